/**
 * zuul-web's answers to `GET /api/tenant/{tenant}/build/{uuid}` as Zuul 14.3.0 gives them
 * (BuildConverter.toDict with its buildset, zuul/web/__init__.py). The running record is
 * the one the real-Zuul suite read from a cleanup playbook (a `zsb-revoke` build: `held`
 * and `final` null, `result` and `end_time` null), with the job, pipeline and ref of a
 * `zsb-bound` build in `post` for project `app`; the others change what Zuul's SQL
 * reporter changes when a build ends. `ref.project` is Zuul's short project name.
 */

export const TENANT = 'zsb';
export const RUNNING_UUID = '3f0c2a9e8d7b4c1a9e6f5d4c3b2a1908';

/** The ref of a build for app's main after a push (RefConverter.toDict). */
const APP_MAIN = {
  project: 'app',
  branch: 'main',
  change: null,
  patchset: null,
  ref: 'refs/heads/main',
  oldrev: '6f1d5c0a0c1e6f0f4d5b0e1f2a3b4c5d6e7f8091',
  newrev: '0a1b2c3d4e5f60718293a4b5c6d7e8f901234567',
  ref_url: '',
};

/** A running build of `zsb-bound` in `post` for app's branch main. */
export function buildAnswer(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    _id: 41,
    uuid: RUNNING_UUID,
    job_name: 'zsb-bound',
    result: null,
    held: null,
    execute_time: '2026-12-01T13:20:01',
    start_time: '2026-12-01T13:20:02',
    end_time: null,
    duration: null,
    voting: true,
    log_url: null,
    nodeset: '',
    error_detail: null,
    final: null,
    artifacts: [],
    provides: [],
    ref: { ...APP_MAIN },
    pipeline: 'post',
    event_id: 'c0ffee0c0ffee0c0ffee0c0ffee0c0ff',
    event_timestamp: '2026-12-01T13:19:58',
    queue_item_uuid: '9b8a7c6d5e4f30211203f4e5d6c7b8a9',
    buildset: {
      uuid: '1a2b3c4d5e6f708192a3b4c5d6e7f809',
      refs: [{ ...APP_MAIN }],
    },
    ...overrides,
  };
}

/** After its cleanup playbooks: result and end_time set, final. */
export const FINISHED = buildAnswer({
  result: 'SUCCESS',
  end_time: '2026-12-01T13:20:31',
  duration: 29.0,
  final: true,
  held: false,
});

/** A build Zuul will retry under a new uuid: RETRY, not final. */
export const RETRIED = buildAnswer({
  result: 'RETRY',
  end_time: '2026-12-01T13:20:09',
  duration: 7.0,
  final: false,
  held: false,
});

/**
 * Paused (zuul_return `pause: true`, waiting for its children): the record stays as while
 * it runs; its post-run and cleanup playbooks run after the children.
 */
export const PAUSED = buildAnswer();

/** The tenant's project list (`/api/tenant/{tenant}/projects`). */
export const PROJECTS = [
  {
    name: 'zuul-config',
    canonical_name: 'localhost/zuul-config',
    connection_name: 'local',
    type: 'config',
  },
  { name: 'app', canonical_name: 'localhost/app', connection_name: 'local', type: 'untrusted' },
  { name: 'other', canonical_name: 'localhost/other', connection_name: 'local', type: 'untrusted' },
  { name: 'twin', canonical_name: 'localhost/twin', connection_name: 'local', type: 'untrusted' },
  {
    name: 'twin',
    canonical_name: 'mirror.example.org/twin',
    connection_name: 'mirror',
    type: 'untrusted',
  },
];

/** A 404 for a build the database does not hold (cherrypy's error page; only the status is read). */
export const NOT_FOUND_BODY =
  '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN">\n<html><head><title>404 Not Found</title></head><body><h2>404 Not Found</h2><p>Build not found</p></body></html>\n';

/** What zuul-web answers for a path it does not serve: its dashboard, 200. */
export const DASHBOARD_HTML =
  '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Zuul</title></head><body><div id="root"></div></body></html>';
