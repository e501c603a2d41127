/**
 * A bare `node:http` server in its own process that answers every request with a small
 * 401: what any Node HTTP service can do on this machine with this load generator, the
 * ceiling against which the broker's reject rate is read.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

const SERVER = `
const server = require('node:http').createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(401, { 'content-type': 'application/problem+json', 'www-authenticate': 'Bearer' });
    res.end('{"status":401,"code":"unauthenticated"}');
  });
});
server.keepAliveTimeout = 5000;
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
process.on('SIGTERM', () => process.exit(0));
`;

export interface BareServer {
  readonly url: string;
  readonly pid: number;
  stop(): Promise<void>;
}

export async function startBareServer(): Promise<BareServer> {
  const child = spawn(process.execPath, ['-e', SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  const pid = child.pid;
  if (pid === undefined || child.stdout === null) throw new Error('cannot start the bare server');
  const lines = createInterface({ input: child.stdout });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('bare server did not start')), 10000);
    lines.once('line', (line) => {
      clearTimeout(timer);
      resolve(Number(line));
    });
  });
  lines.close();
  return {
    url: `http://127.0.0.1:${port}`,
    pid,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      });
    },
  };
}
