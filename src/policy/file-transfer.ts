/**
 * What crosses from the reload worker to the serving thread for one checked file
 * (ADR 0018): its contribution as plain data that structured clone copies, without the
 * locations, and its rebuilding there. A location is a lazy object (source.ts): cloning
 * it would read its line and column, i.e. make the worker parse every file with the
 * `yaml` library. The serving thread gives every definition a lazy location again, at
 * the same data path the checker used, from the same file text.
 *
 * Only files of a set that passed every check are handed over, so the n-th grant of the
 * contribution is the n-th entry of the file's `grants` list (likewise secrets and
 * rotations): nothing was skipped.
 */
import type { FileContribution, FileParts } from './load.js';
import { lazyPositions } from './source.js';
import type { TimeSlices } from './time-slices.js';
import type { Grant, MatchField, Rotation, SecretDefinition, SourceLocation } from './types.js';
import { MATCH_FIELDS } from './types.js';

export interface FileTransfer {
  readonly secrets: readonly Omit<SecretDefinition, 'location'>[];
  readonly grants: readonly Omit<Grant, 'location' | 'matchLocations'>[];
  readonly rotations: readonly Omit<Rotation, 'location'>[];
  readonly configProjects: ReadonlyMap<string, ReadonlySet<string>>;
}

/** In the worker: the contribution without its locations. */
export function toTransfer(c: FileContribution): FileTransfer {
  return {
    secrets: c.secrets.map(({ location: _, ...secret }) => secret),
    grants: c.grants.map((g) => ({
      name: g.name,
      match: g.match,
      allow: g.allow,
      ttlSeconds: g.ttlSeconds,
      wrap: g.wrap,
    })),
    rotations: c.rotations.map(({ location: _, ...rotation }) => rotation),
    configProjects: c.configProjects,
  };
}

/** Structured clone drops freezing: a serving set is immutable all the way down. */
function frozen<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  for (const inner of Object.values(value)) frozen(inner);
  return Object.freeze(value);
}

/**
 * On the serving thread: the parts of file `name` (whose text the worker checked) with
 * lazy locations, built in slices.
 */
export async function fromTransfer(
  name: string,
  text: string,
  t: FileTransfer,
  slices: TimeSlices,
): Promise<FileParts> {
  const at = lazyPositions(name, text);
  // Keys in the checker's order, so that the two are alike also when printed.
  const secrets = t.secrets.map(({ name: secret, source, ...rest }) =>
    Object.freeze({
      name: secret,
      source: frozen(source),
      location: at.locateKey(['secrets'], secret),
      ...frozen(rest),
    }),
  );
  const grants: Grant[] = [];
  for (let i = 0; i < t.grants.length; i++) {
    const g = t.grants[i] as FileTransfer['grants'][number];
    const matchLocations: Partial<Record<MatchField, SourceLocation>> = {};
    for (const field of MATCH_FIELDS) {
      if (g.match[field] !== undefined) {
        matchLocations[field] = at.locate(['grants', i, 'match', field]);
      }
    }
    grants.push(
      Object.freeze({
        name: g.name,
        match: frozen(g.match),
        matchLocations: Object.freeze(matchLocations),
        allow: Object.freeze(g.allow),
        ttlSeconds: g.ttlSeconds,
        wrap: g.wrap,
        location: at.locate(['grants', i]),
      }),
    );
    if ((i & 15) === 15 && slices.due()) await slices.next();
  }
  const rotations = t.rotations.map((r, i) =>
    Object.freeze({ ...frozen(r), location: at.locate(['rotations', i]) }),
  );
  return { secrets, grants, rotations, configProjects: t.configProjects };
}
