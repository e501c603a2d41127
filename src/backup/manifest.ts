/**
 * A snapshot's manifest: `<snapshot>.manifest.json` next to it. It says when the snapshot
 * was taken, of which cluster and OpenBao version, its size and SHA-256, which canary it
 * holds (the KV path and version, and a SHA-256 of the value: never the value), and whether
 * and when a restore proved it good. A snapshot without a manifest is not a backup.
 */
import { z } from 'zod';

export const MANIFEST_FORMAT = 'zsb-backup/1';
export const SNAPSHOT_SUFFIX = '.snap';
export const MANIFEST_SUFFIX = '.manifest.json';

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/);

export const VerificationSchema = z
  .object({
    result: z.enum(['verified', 'failed']),
    at: z.string(),
    seconds: z.number().nonnegative(),
    /** Version of the scratch server the snapshot was restored into. */
    openbaoVersion: z.string(),
    /** Value-free reason of a failure. */
    reason: z.string().optional(),
  })
  .strict();
export type Verification = z.infer<typeof VerificationSchema>;

export const ManifestSchema = z
  .object({
    format: z.literal(MANIFEST_FORMAT),
    /** Random id of this backup; the canary record carries it too. */
    id: z.string().regex(/^[0-9a-z-]{8,64}$/),
    /** The snapshot's file name (no directory): manifests travel with their snapshot. */
    file: z.string().min(1),
    takenAt: z.string(),
    cluster: z.object({ id: z.string(), name: z.string() }).strict(),
    openbaoVersion: z.string(),
    bytes: z.number().int().nonnegative(),
    sha256: Sha256,
    canary: z
      .object({
        mount: z.string(),
        path: z.string(),
        version: z.number().int().positive(),
        valueSha256: Sha256,
      })
      .strict(),
    /** Seconds the snapshot download took. */
    snapshotSeconds: z.number().nonnegative(),
    verification: VerificationSchema.optional(),
  })
  .strict();
export type Manifest = z.infer<typeof ManifestSchema>;

export class ManifestError extends Error {
  override readonly name = 'ManifestError';
}

/** `zsb-snapshot-20261201T095700Z-<id>.snap`: sorts by time, names the backup. */
export function snapshotFileName(takenAt: Date, id: string): string {
  const stamp = takenAt
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `zsb-snapshot-${stamp}-${id}${SNAPSHOT_SUFFIX}`;
}

export function manifestNameOf(snapshotFile: string): string {
  return `${snapshotFile}${MANIFEST_SUFFIX}`;
}

export function parseManifest(text: string, source: string): Manifest {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    throw new ManifestError(`${source}: not JSON`);
  }
  const result = ManifestSchema.safeParse(document);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue?.path.map(String).join('.') || '(root)';
    throw new ManifestError(`${source}: invalid manifest at ${where}`);
  }
  return result.data;
}

export function isVerified(manifest: Manifest): boolean {
  return manifest.verification?.result === 'verified';
}
