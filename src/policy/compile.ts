/**
 * `zsb policy compile`: the least-privilege OpenBao set-up the broker needs for exactly
 * the paths its policies reference, and nothing else:
 *
 * - the broker's own ACL policy: read the referenced KV paths, create build tokens from
 *   its token role, keep its ledger, revoke what it issued;
 * - the build-token ACL policy: issue the referenced dynamic secrets (database creds,
 *   certificates, child tokens); build tokens exist only inside the broker;
 * - the token role that creates build tokens: orphan, not renewable, TTL capped.
 *
 * Placeholders become ACL wildcards: `+` for one-segment values ({tenant}, {secret},
 * {job}, {build}); {project} is a canonical project name of several segments
 * (host/org/repo…) and ACL globs cannot say "some segments" in the middle of a path, so
 * one rule is written per project depth from 1 to MAX_PROJECT_SEGMENTS.
 */
import type { PolicySet, SecretSource } from './types.js';

export const MAX_PROJECT_SEGMENTS = 6;

export interface CompileOptions {
  readonly stateMount: string;
  readonly statePrefix: string;
  readonly buildTokenRole: string;
  readonly buildPolicy: string;
  readonly maxTtlSeconds: number;
  /** The broker takes verified backups (docs/backup-and-restore.md): snapshot, lock, canary. */
  readonly backup?: boolean;
}

export const DEFAULT_COMPILE_OPTIONS: CompileOptions = {
  stateMount: 'secret',
  statePrefix: 'zsb',
  buildTokenRole: 'zsb-build',
  buildPolicy: 'zsb-build',
  maxTtlSeconds: 3600,
};

export interface TokenRole {
  readonly allowed_policies: readonly string[];
  readonly orphan: true;
  readonly renewable: false;
  readonly token_explicit_max_ttl: number;
  readonly token_type: 'service';
}

export interface OpenBaoSetup {
  /** HCL of the broker's own policy. */
  readonly brokerPolicy: string;
  /** HCL of the policy every build token carries. */
  readonly buildPolicy: string;
  readonly buildTokenRole: TokenRole;
}

interface Rule {
  readonly path: string;
  readonly capabilities: readonly string[];
  readonly why: string;
}

const SINGLE = /\{(tenant|secret|job|build)\}/g;

/** All concrete ACL paths for a templated path. */
function expandTemplate(template: string): string[] {
  const single = template.replace(SINGLE, '+');
  if (!single.includes('{project}')) return [single];
  const paths: string[] = [];
  for (let depth = 1; depth <= MAX_PROJECT_SEGMENTS; depth++) {
    paths.push(single.replaceAll('{project}', Array.from({ length: depth }, () => '+').join('/')));
  }
  return paths;
}

/** What the broker itself needs for a secret (KV reads, revoking certificates). */
function brokerRules(name: string, source: SecretSource): Rule[] {
  switch (source.kind) {
    case 'kv':
      return expandTemplate(source.path).map((p) => ({
        path: `${source.mount}/data/${p}`,
        capabilities: ['read'],
        why: `secret ${name}`,
      }));
    case 'pki':
      return [
        {
          path: `${source.mount}/revoke`,
          capabilities: ['update'],
          why: `revoke certificates of ${name}`,
        },
      ];
    default:
      return [];
  }
}

/** What a build token needs to issue a dynamic secret. */
function buildRules(name: string, source: SecretSource): Rule[] {
  switch (source.kind) {
    case 'database':
      return [
        {
          path: `${source.mount}/creds/${source.role}`,
          capabilities: ['read'],
          why: `secret ${name}`,
        },
      ];
    case 'pki':
      return [
        {
          path: `${source.mount}/issue/${source.role}`,
          capabilities: ['update'],
          why: `secret ${name}`,
        },
      ];
    case 'token':
      return [
        {
          path: 'auth/token/create',
          capabilities: ['update'],
          why: `secret ${name} (child tokens)`,
        },
      ];
    default:
      return [];
  }
}

/** What rotations need: write the rotated KV secrets, read admin and rotator logins, rotate static roles. */
function rotationRules(set: PolicySet, options: CompileOptions): Rule[] {
  if (set.rotations.length === 0) return [];
  const rules: Rule[] = [
    {
      path: `${options.stateMount}/data/${options.statePrefix}/rotations/*`,
      capabilities: ['create', 'read', 'update'],
      why: 'rotation state and locks',
    },
  ];
  const kvPath = (name: string): string | undefined => {
    const source = set.secrets.get(name)?.source;
    return source?.kind === 'kv' ? `${source.mount}/data/${source.path}` : undefined;
  };
  for (const rotation of set.rotations) {
    const why = `rotation of ${rotation.name}`;
    const secret = rotation.secret === undefined ? undefined : kvPath(rotation.secret);
    if (secret !== undefined) {
      rules.push({ path: secret, capabilities: ['create', 'read', 'update'], why });
    }
    const target = rotation.target;
    if (target.kind === 'postgres' || target.kind === 'application-credential') {
      const login = kvPath(target.kind === 'postgres' ? target.admin : target.rotator);
      if (login !== undefined) rules.push({ path: login, capabilities: ['read'], why });
    } else if (target.kind === 'static-role') {
      rules.push(
        { path: `${target.mount}/rotate-role/${target.role}`, capabilities: ['update'], why },
        { path: `${target.mount}/static-creds/${target.role}`, capabilities: ['read'], why },
      );
    }
  }
  return rules;
}

/** What backups need; a restore needs sudo on the same path, an admin's action, not the broker's. */
function backupRules(options: CompileOptions): Rule[] {
  if (!options.backup) return [];
  return [
    { path: 'sys/storage/raft/snapshot', capabilities: ['read'], why: 'take raft snapshots' },
    {
      path: `${options.stateMount}/data/${options.statePrefix}/backup/*`,
      capabilities: ['create', 'read', 'update'],
      why: 'backup lock and canary',
    },
  ];
}

function hclString(value: string): string {
  // HCL string escapes are JSON's for the characters a validated path can hold.
  return JSON.stringify(value);
}

function render(rules: readonly Rule[], header: string): string {
  const byPath = new Map<string, { capabilities: Set<string>; why: string[] }>();
  for (const rule of rules) {
    const entry = byPath.get(rule.path) ?? { capabilities: new Set<string>(), why: [] };
    for (const c of rule.capabilities) entry.capabilities.add(c);
    entry.why.push(rule.why);
    byPath.set(rule.path, entry);
  }
  const blocks = [...byPath.entries()].map(([path, entry]) => {
    const caps = [...entry.capabilities].sort().map(hclString).join(', ');
    const why = [...new Set(entry.why)].join(', ');
    return `# ${why}\npath ${hclString(path)} {\n  capabilities = [${caps}]\n}\n`;
  });
  return [
    '# Generated by `zsb policy compile` from the policy files; do not edit by hand.',
    `# ${header}; anything not listed here is denied.`,
    '',
    ...blocks,
  ].join('\n');
}

export function compileOpenBaoSetup(
  set: PolicySet,
  options: CompileOptions = DEFAULT_COMPILE_OPTIONS,
): OpenBaoSetup {
  const secrets = [...set.secrets.entries()].sort(([a], [b]) => a.localeCompare(b));
  const dynamic = secrets.some(([, s]) => s.source.kind !== 'kv');
  const broker: Rule[] = secrets.flatMap(([name, s]) => brokerRules(name, s.source));
  broker.push({
    path: 'auth/token/revoke-accessor',
    capabilities: ['update'],
    why: 'revoke wrapping and build tokens',
  });
  broker.push(
    { path: 'auth/token/lookup-self', capabilities: ['read'], why: "the broker's own token TTL" },
    {
      // Unused on a single server; on a raft cluster /readyz reports what sys/health
      // hides (docs/high-availability.md). Read-only, no sudo.
      path: 'sys/storage/raft/autopilot/state',
      capabilities: ['read'],
      why: 'readiness: raft autopilot health and failure tolerance',
    },
    {
      path: 'auth/token/renew-self',
      capabilities: ['update'],
      why: "renew the broker's own token",
    },
  );
  if (dynamic) {
    broker.push(
      {
        path: `auth/token/create/${options.buildTokenRole}`,
        capabilities: ['update'],
        why: 'create build tokens',
      },
      {
        path: `auth/token/roles/${options.buildTokenRole}`,
        capabilities: ['read'],
        why: "readiness: the build token role exists (/readyz check 'dynamic')",
      },
      {
        path: 'sys/leases/revoke',
        capabilities: ['update'],
        why: 'undo leases of failed requests',
      },
      {
        path: `${options.stateMount}/data/${options.statePrefix}/builds/*`,
        capabilities: ['create', 'read', 'update'],
        why: 'the build ledger',
      },
    );
  }
  broker.push(...rotationRules(set, options));
  broker.push(...backupRules(options));
  const tokenPolicies = secrets.flatMap(([, s]) =>
    s.source.kind === 'token' ? s.source.policies : [],
  );
  return {
    brokerPolicy: render(broker, 'Everything the broker may do in OpenBao'),
    buildPolicy: render(
      secrets.flatMap(([name, s]) => buildRules(name, s.source)),
      'What a per-build token may do',
    ),
    buildTokenRole: {
      allowed_policies: [...new Set([options.buildPolicy, ...tokenPolicies])].sort(),
      orphan: true,
      renewable: false,
      token_explicit_max_ttl: options.maxTtlSeconds,
      token_type: 'service',
    },
  };
}

/** The broker's own ACL policy only (kept for callers that need just that). */
export function compileAclPolicy(
  set: PolicySet,
  options: CompileOptions = DEFAULT_COMPILE_OPTIONS,
): string {
  return compileOpenBaoSetup(set, options).brokerPolicy;
}
