import { describe, expect, it } from 'vitest';
import { everySeconds, scheduleOf } from '../../../src/backup/settings.js';
import { parseConfig } from '../../../src/config/load.js';

const base = {
  issuers: [{ issuer: 'https://zuul.example.org', audience: 'a' }],
  openbao: { address: 'http://127.0.0.1:8200', auth: { method: 'token', tokenFile: '/t' } },
};
const verify = { sealKeyFile: '/k', sealKeyId: 'k1' };

describe('the backup: configuration section', () => {
  it('takes an interval or a cron schedule, exactly one, with defaults for the rest', () => {
    const config = parseConfig({ ...base, backup: { directory: '/b', every: '6h', verify } });
    expect(config.backup).toMatchObject({
      enabled: true,
      lockTtlSeconds: 900,
      retention: { hourly: 24, daily: 7, weekly: 4, unverified: 2 },
      verify: { timeoutSeconds: 300 },
    });
    expect(config.backup && scheduleOf(config.backup)).toEqual({ everySeconds: 21600 });
    expect(() => parseConfig({ ...base, backup: { directory: '/b', verify } })).toThrow(
      /backup: set exactly one of schedule or every/,
    );
    expect(() =>
      parseConfig({ ...base, backup: { directory: '/b', every: 60, schedule: '@daily', verify } }),
    ).toThrow(/exactly one/);
  });

  it('refuses unknown keys, a missing seal key and a bad cron, naming the key', () => {
    expect(() =>
      parseConfig({ ...base, backup: { directory: '/b', every: 60, verify, extra: 1 } }),
    ).toThrow(/backup: unknown key\(s\) extra/);
    expect(() =>
      parseConfig({ ...base, backup: { directory: '/b', every: 60, verify: { sealKeyId: 'k' } } }),
    ).toThrow(/backup\.verify\.sealKeyFile/);
    const cron = parseConfig({
      ...base,
      backup: { directory: '/b', schedule: 'every day', verify },
    });
    expect(() => cron.backup && scheduleOf(cron.backup)).toThrow(/backup.schedule: not a cron/);
    expect(() => everySeconds('soon')).toThrow(/backup.every: not a duration/);
    expect(everySeconds('1w')).toBe(604800);
  });
});
