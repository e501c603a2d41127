#!/usr/bin/env node
// A command-provider executable (docs/rotation.md#command-provider) for a registry robot
// account kept in an htpasswd file: `htpasswd-robot.mjs set|test|rollback`.
// Input: the JSON object on stdin, or in the file ZSB_ROTATION_INPUT names.
// Settings (not secret): HTPASSWD_FILE, REGISTRY_URL.
// set: htpasswd -B -i (the password on its stdin, never in argv); idempotent.
// test: the registry API (GET /v2/) with the pending login: 200 → 0, 401 → 1, else 75.
// rollback: sets the password KV holds now, so the current value works again.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const TEMPORARY = 75;
const step = process.argv[2];
const raw = process.env.ZSB_ROTATION_INPUT
  ? readFileSync(process.env.ZSB_ROTATION_INPUT, 'utf8')
  : readFileSync(0, 'utf8');
const input = JSON.parse(raw);
if (input.step !== step) process.exit(2);

function setPassword(login) {
  if (typeof login?.username !== 'string' || typeof login?.password !== 'string') process.exit(2);
  const result = spawnSync('htpasswd', ['-B', '-i', process.env.HTPASSWD_FILE, login.username], {
    input: login.password,
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  process.exit(result.status === 0 ? 0 : TEMPORARY);
}

if (step === 'set') setPassword(input.pending);
else if (step === 'rollback') setPassword(input.current);
else if (step === 'test') {
  const { username, password } = input.pending;
  const basic = Buffer.from(`${username}:${password}`).toString('base64');
  try {
    const response = await fetch(`${process.env.REGISTRY_URL}/v2/`, {
      headers: { authorization: `Basic ${basic}` },
      signal: AbortSignal.timeout(10000),
    });
    process.exit(response.status === 200 ? 0 : response.status === 401 ? 1 : TEMPORARY);
  } catch {
    process.exit(TEMPORARY);
  }
} else process.exit(2);
