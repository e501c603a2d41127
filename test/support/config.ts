/** The problems `parseConfig` names for a configuration document; empty when it is valid. */
import { ConfigError, parseConfig } from '../../src/config/load.js';

export function configProblems(document: unknown): readonly string[] {
  try {
    parseConfig(document);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}
