import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileGlob } from '../../../src/policy/glob.js';
import { referenceGlob } from './reference.js';

function matches(pattern: string, value: string): boolean {
  const glob = compileGlob(pattern);
  if (!glob.ok) throw new Error(`pattern ${pattern} did not compile: ${glob.reason}`);
  return glob.match(value);
}

describe('compileGlob', () => {
  it.each([
    // [pattern, value, expected]
    ['post', 'post', true],
    ['post', 'posts', false],
    ['post', 'Post', false],
    ['scs-compliance-*', 'scs-compliance-check', true],
    ['scs-compliance-*', 'scs-compliance-', true],
    ['scs-compliance-*', 'xscs-compliance-check', false],
    ['*-deploy', 'status-page-deploy', true],
    ['*-deploy', 'status-page-deploy-x', false],
    ['a*b*c', 'aXbYc', true],
    ['a*b*c', 'abc', true],
    ['a*b*c', 'acb', false],
    ['*.yaml', '.yaml', true],
    // `*` stays within one segment
    ['github.com/SovereignCloudStack/*', 'github.com/SovereignCloudStack/standards', true],
    ['github.com/SovereignCloudStack/*', 'github.com/SovereignCloudStack/a/b', false],
    ['github.com/*', 'github.com/SovereignCloudStack/standards', false],
    ['*', 'a/b', false],
    // `**` crosses segments, zero or more
    ['github.com/SovereignCloudStack/**', 'github.com/SovereignCloudStack/standards', true],
    ['github.com/SovereignCloudStack/**', 'github.com/SovereignCloudStack/a/b/c', true],
    ['github.com/SovereignCloudStack/**', 'github.com/SovereignCloudStack', true],
    ['github.com/SovereignCloudStack/**', 'github.com/Other/standards', false],
    ['github.com/SovereignCloudStack/**', 'github.com/SovereignCloudStackX/a', false],
    ['a/**/b', 'a/b', true],
    ['a/**/b', 'a/x/y/b', true],
    ['a/**/b', 'a/x/y/c', false],
    ['**/playbooks/*.yaml', 'github.com/o/r/playbooks/deploy.yaml', true],
    ['**/playbooks/*.yaml', 'playbooks/deploy.yaml', true],
    ['**/playbooks/*.yaml', 'github.com/o/r/playbooks/sub/deploy.yaml', false],
    ['**', 'anything/at/all', true],
    // everything except * is literal
    ['job?', 'job?', true],
    ['job?', 'jobs', false],
    ['j?b-*', 'j?b-1', true],
    ['j?b-*', 'jab-1', false],
    ['[ab]-*', '[ab]-1', true],
    ['[ab]-*', 'a-1', false],
    ['{a,b}-*', '{a,b}-1', true],
    ['{a,b}-*', 'a-1', false],
    ['!(x)*', '!(x)y', true],
    ['+(a)*', '+(a)1', true],
    ['+(a)*', 'a1', false],
    ['a\\*', 'a\\b', true],
    ['a\\*', 'a*', false],
    ['a.*', 'a.b', true],
    ['a.*', 'aXb', false],
    // exact patterns compare by equality, even with `//` (issuer URLs)
    ['https://zuul.example.org', 'https://zuul.example.org', true],
    ['https://zuul.example.org', 'https://zuul.example.org/', false],
    // wildcard patterns never match malformed values
    ['**', '', false],
    ['*', '', false],
    ['a/*', 'a/..', false],
    ['a/*', 'a/.', false],
    ['a/**', 'a/../b', false],
    ['a/*/b', 'a//b', false],
    ['a/**', 'a/', false],
    ['*', 'a\nb', false],
  ])('%j against %j → %s', (pattern, value, expected) => {
    expect(matches(pattern, value)).toBe(expected);
  });

  it.each([
    ['', 'pattern is empty'],
    ['a\nb', 'control character'],
    ['a\u0000', 'control character'],
    ['job\u007f*', 'control character'],
    ['a**', "'**' must be a whole path segment"],
    ['**b/c', "'**' must be a whole path segment"],
    ['***', "'**' must be a whole path segment"],
    ['a//*', "empty, '.' or '..' segment"],
    ['a/../*', "empty, '.' or '..' segment"],
    ['/*', "empty, '.' or '..' segment"],
    ['*/', "empty, '.' or '..' segment"],
    ['x'.repeat(1025), 'longer than 1024'],
  ])('refuses %j', (pattern, reason) => {
    const glob = compileGlob(pattern);
    expect(glob.ok).toBe(false);
    if (!glob.ok) expect(glob.reason).toContain(reason);
  });

  it('matches in linear-ish time on adversarial values (no regex backtracking)', () => {
    const glob = compileGlob('*a*a*a*a*a*a*b');
    expect(glob.ok).toBe(true);
    if (!glob.ok) return;
    const started = performance.now();
    expect(glob.match('a'.repeat(20000))).toBe(false);
    const deep = compileGlob('**/a/**/a/**/a/**/b');
    if (deep.ok) expect(deep.match(Array(2000).fill('a').join('/'))).toBe(false);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('agrees with the naive reference matcher (property)', () => {
    const pieces = [
      'a',
      'b',
      'ab',
      '.',
      '-',
      '?',
      '[',
      '\\',
      ' ',
      'é',
      '*',
      '/',
      '**',
      '/**/',
      'a*b',
    ];
    const pattern = fc.array(fc.constantFrom(...pieces), { maxLength: 10 }).map((p) => p.join(''));
    const value = fc
      .array(fc.constantFrom(...pieces.filter((p) => !p.includes('*')), '/a/'), { maxLength: 12 })
      .map((p) => p.join(''));
    fc.assert(
      fc.property(pattern, value, (p, v) => {
        const glob = compileGlob(p);
        return !glob.ok || glob.match(v) === referenceGlob(p, v);
      }),
      { numRuns: 20000 },
    );
  });
});
