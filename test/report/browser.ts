/**
 * Headless Chromium for the report suite: Debian's /usr/bin/chromium (installed by
 * `npm run setup:browser`), driven by playwright-core, which never downloads a browser.
 * Playwright gives every launch a fresh profile directory; the flags keep Chromium from
 * reaching for the network (on a closed network it otherwise stalls).
 */
import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

export const CHROMIUM = process.env.ZSB_CHROMIUM ?? '/usr/bin/chromium';

const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: run \`npm run setup:browser\` (apt-get install chromium)`,
    );
  }
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
}
