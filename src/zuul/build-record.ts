/**
 * zuul-web's record of one build, for the build binding (ADR 0014):
 * `GET {zuul-web}/api/tenant/{tenant}/build/{uuid}` (documented in Zuul 14.3.0's
 * `zuul/web/__init__.py`, written by its SQL reporter). The scheduler writes the record
 * when the executor reports the build's start, with `result` and `end_time` null, and fills
 * both when the build completes (after its cleanup playbooks). Unknown builds (and unknown
 * tenants) are a 404.
 *
 * The one client of that route. It fetches with the key set's fetcher, so the same rules
 * hold: bounded time and size, redirects refused, failures described without credentials.
 * It only reads and checks the answer; what a record means for a request is decided by the
 * binding (src/broker/build-binding.ts).
 */
import { z } from 'zod';
import {
  type DocumentFetchOptions,
  fetchIssuerDocument,
  IssuerDocumentError,
  shownUrl,
} from '../identity/issuer-document.js';

/** The fields of a build record the binding uses. */
export interface BuildRecord {
  readonly uuid: string;
  readonly jobName: string;
  readonly pipeline: string;
  /** Null while the build runs (and while it is paused). */
  readonly result: string | null;
  /** Null while the build runs. */
  readonly endTime: string | null;
  /** Zuul's short project name (`org/repo`), not the canonical `host/org/repo`. */
  readonly project: string;
  /** The branch, or '' for a tag or another ref without one. */
  readonly branch: string;
  /** `refs/heads/…`, `refs/tags/…`, `refs/changes/…`, or ''. */
  readonly ref: string;
}

export type BuildLookup =
  | { readonly found: true; readonly record: BuildRecord }
  | { readonly found: false };

export interface BuildRecordOptions extends DocumentFetchOptions {}

/** Names that reach the policy decision and the log: no control or format characters. */
const name = z
  .string()
  .max(1024)
  .refine((value) => !/[\p{Cc}\p{Cf}]/u.test(value));
const optionalName = name.nullable().optional();

/** Zuul adds fields over time: unknown ones are ignored, the ones used are checked. */
const BuildRecordSchema = z.object({
  uuid: z.string().regex(/^[0-9a-f]{32}$/),
  job_name: name.min(1),
  pipeline: name.min(1),
  result: name.nullable(),
  end_time: z.string().max(64).nullable(),
  ref: z.object({
    project: name.min(1),
    branch: optionalName,
    ref: optionalName,
  }),
});

export function buildRecordUrl(webUrl: string, tenant: string, build: string): string {
  return `${webUrl}/api/tenant/${encodeURIComponent(tenant)}/build/${encodeURIComponent(build)}`;
}

/**
 * The record of `build` in `tenant`, `{ found: false }` on a 404, or an IssuerDocumentError
 * (timeout, unreachable, redirect, another status, too large, not a build record).
 */
export async function fetchBuildRecord(
  webUrl: string,
  tenant: string,
  build: string,
  options: BuildRecordOptions,
): Promise<BuildLookup> {
  const url = buildRecordUrl(webUrl, tenant, build);
  let fetched: Awaited<ReturnType<typeof fetchIssuerDocument>>;
  try {
    fetched = await fetchIssuerDocument(url, options);
  } catch (error) {
    if (error instanceof IssuerDocumentError && error.status === 404) return { found: false };
    throw error;
  }
  const parsed = BuildRecordSchema.safeParse(fetched.json);
  if (!parsed.success || parsed.data.uuid !== build) {
    throw new IssuerDocumentError(
      `not the build record asked for from ${shownUrl(url)} (${fetched.answer})`,
      'invalid',
    );
  }
  const r = parsed.data;
  return {
    found: true,
    record: {
      uuid: r.uuid,
      jobName: r.job_name,
      pipeline: r.pipeline,
      result: r.result,
      endTime: r.end_time,
      project: r.ref.project,
      branch: r.ref.branch ?? '',
      ref: r.ref.ref ?? '',
    },
  };
}
