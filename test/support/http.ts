/** Small helpers for tests that talk to a running broker over real HTTP. */
import { expect } from 'vitest';

/** One request with a job token; the JSON answer and its status. */
export async function brokerCall(
  url: string,
  method: string,
  route: string,
  token: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${url}${route}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Polls until `predicate` holds (OpenBao revokes and expires asynchronously). */
export async function until(predicate: () => Promise<boolean>, timeoutMs = 20000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await predicate()) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error('condition not reached in time');
}

/** The one 401 every check gives (api.md: a 401 never says which check failed). */
export async function expectGeneric401(res: Response): Promise<void> {
  expect(res.status).toBe(401);
  expect(res.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
  const body = (await res.json()) as Record<string, unknown>;
  expect(body).toMatchObject({
    code: 'unauthenticated',
    detail: 'a valid Zuul ID token is required',
  });
}
