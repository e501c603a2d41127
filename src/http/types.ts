import type { JobIdentity } from '../identity/types.js';

/** What a request contributes to its one log line: names and outcomes, never values. */
export interface RequestLog {
  secrets?: readonly string[];
  grants?: Readonly<Record<string, string>>;
  outcome?: string;
  reason?: string;
}

export interface AppEnv {
  Variables: {
    requestId: string;
    log: RequestLog;
    identity?: JobIdentity;
  };
}
