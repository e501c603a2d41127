/**
 * The Keystone client's answers to what a real Keystone cannot be made to do on demand
 * (test/credentials/ covers the real one): an endless answer, a connection broken off
 * mid-answer, an error body quoting the request. A loopback HTTP server plays the part.
 */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TargetError } from '../../../src/rotation/driver.js';
import { KeystoneClient } from '../../../src/rotation/providers/keystone-client.js';

const PASSWORD = 'rotator-password-never-shown';

let server: Server;
let base: string;
let behaviour: 'endless' | 'broken' | 'echo' = 'echo';

beforeAll(async () => {
  server = createServer((req, res) => {
    let request = '';
    req.on('data', (c: Buffer) => {
      request += c.toString('utf8');
    });
    req.on('end', () => {
      if (behaviour === 'endless') {
        // Far more than the client's 1 MiB bound, and the answer never ends.
        res.writeHead(201, { 'content-type': 'application/json', 'x-subject-token': 't' });
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        const timer = setInterval(() => res.write(chunk), 1);
        res.on('close', () => clearInterval(timer));
      } else if (behaviour === 'broken') {
        res.writeHead(201, { 'content-type': 'application/json', 'content-length': '1000' });
        res.write('{"token": {');
        setTimeout(() => res.socket?.destroy(), 20);
      } else {
        // An error answer quoting the request, as Keystone's validation errors may.
        res
          .writeHead(500, { 'content-type': 'application/json' })
          .end(JSON.stringify({ error: { message: `bad request: ${request}` } }));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  base = `http://127.0.0.1:${address.port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function client(): KeystoneClient {
  return new KeystoneClient({
    auth_url: `${base}/v3`,
    username: 'rotator',
    password: PASSWORD,
    project_name: 'ci',
  });
}

describe('Keystone client', () => {
  it('refuses an answer larger than its bound without reading it to the end', async () => {
    behaviour = 'endless';
    const login = client().session();
    await expect(login).rejects.toBeInstanceOf(TargetError);
    await expect(login).rejects.toThrow(/^Keystone answer too large \(rotator login\)$/);
  });

  it('names a connection broken off mid-answer in its own words', async () => {
    behaviour = 'broken';
    await expect(client().session()).rejects.toThrow(/^Keystone did not answer \(rotator login\)$/);
  });

  it('never repeats what Keystone answered, even when it quotes the request', async () => {
    behaviour = 'echo';
    const login = client().session();
    await expect(login).rejects.toThrow(/^Keystone answered 500 \(rotator login\)$/);
    const message = await login.catch((e: Error) => e.message);
    expect(message).not.toContain(PASSWORD);
  });
});
