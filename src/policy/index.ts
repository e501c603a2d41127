/**
 * The policy module: the policy file schema and loader, match patterns, secret
 * path templates, the pure allow/deny decision and the policy test runner.
 * Policies are data: nothing here talks to the network, and only the loaders
 * (`loadPolicyDir`, `loadPolicyTests`) read files.
 */

export type { GrantMatch } from './decide.js';
export { allowedFor, decide, matchGrant } from './decide.js';
export { formatDuration, parseDuration } from './duration.js';
export type { CompiledGlob } from './glob.js';
export { compileGlob } from './glob.js';
export type { LoadOptions, SecretKind } from './load.js';
export {
  formatProblem,
  loadPolicyDir,
  NAME_PATTERN,
  parsePolicyFiles,
  SECRET_KINDS,
} from './load.js';
export type { Placeholder, RenderedName, RenderedPath } from './paths.js';
export {
  checkCommonNameTemplate,
  checkMount,
  checkPathTemplate,
  checkRole,
  PLACEHOLDERS,
  renderCommonName,
  renderSecretPath,
} from './paths.js';
export type { SourceFile } from './source.js';
export type { PolicyTestCase, PolicyTestOutcome, PolicyTestsLoad } from './test-runner.js';
export { ANY_ISSUER, loadPolicyTests, parsePolicyTests, runPolicyTests } from './test-runner.js';
export * from './types.js';
