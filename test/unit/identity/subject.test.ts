import { describe, expect, it } from 'vitest';
import { parseSubject } from '../../../src/identity/subject.js';

describe('parseSubject', () => {
  it.each([
    [
      'secret:scs/github.com/SovereignCloudStack/standards/openbao-id',
      { tenant: 'scs', project: 'github.com/SovereignCloudStack/standards', secret: 'openbao-id' },
    ],
    ['secret:t/p/s', { tenant: 't', project: 'p', secret: 's' }],
    [
      'secret:example-tenant/opendev.org/openstack/nova/extra/site_secret',
      {
        tenant: 'example-tenant',
        project: 'opendev.org/openstack/nova/extra',
        secret: 'site_secret',
      },
    ],
    [
      'secret:scs/gitlab.com/a.b/c...d/x.y',
      { tenant: 'scs', project: 'gitlab.com/a.b/c...d', secret: 'x.y' },
    ],
  ])('accepts %s', (sub, expected) => {
    expect(parseSubject(sub)).toEqual({ ok: true, subject: expected });
  });

  it.each([
    ['', 'not a secret'],
    ['secret:', 'too few segments'],
    ['secret:scs', 'too few segments'],
    ['secret:scs/openbao-id', 'too few segments'],
    ['project:scs/github.com/org/repo/x', 'not a secret'],
    ['Secret:scs/github.com/org/repo/x', 'not a secret'],
    [' secret:scs/github.com/org/repo/x', 'not a secret'],
    ['secret:/github.com/org/repo/x', 'empty segment'],
    ['secret:scs//org/repo/x', 'empty segment'],
    ['secret:scs/github.com/org/repo/', 'empty segment'],
    ['secret:scs/github.com/../repo/x', 'dot segment'],
    ['secret:scs/github.com/./repo/x', 'dot segment'],
    ['secret:../github.com/org/repo/x', 'dot segment'],
    ['secret:scs/github.com/org/repo/..', 'dot segment'],
    ['secret:scs/github.com/org/re po/x', 'forbidden character'],
    ['secret:scs/github.com/org/repo/x\n', 'forbidden character'],
    ['secret:scs\t/github.com/org/repo/x', 'forbidden character'],
    ['secret:scs/github.com/org/repo/x\u0000', 'forbidden character'],
    ['secret:scs/github.com/org/repo/x\u007f', 'forbidden character'],
    ['secret:scs/github.com/org/repo\u202e/x', 'forbidden character'],
    ['secret:scs/github.com/org/repo\u200b/x', 'forbidden character'],
    ['secret:scs/github.com/org/repo\u00a0/x', 'forbidden character'],
  ])('rejects %j (%s)', (sub, fragment) => {
    const result = parseSubject(sub);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.reason).toContain(fragment);
      if (sub !== '') expect(result.reason).not.toContain(sub);
    }
  });

  it('rejects an absurdly long subject', () => {
    expect(parseSubject(`secret:scs/${'a/'.repeat(1100)}x`)).toEqual({
      ok: false,
      reason: 'subject too long',
    });
  });
});
