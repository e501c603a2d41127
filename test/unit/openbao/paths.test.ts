import { describe, expect, it } from 'vitest';
import { apiPath, splitSegments, UnsafePathError } from '../../../src/openbao/paths.js';

describe('apiPath', () => {
  it('joins and encodes validated segments', () => {
    expect(apiPath('secret', 'data', 'zuul/scs/github.com/org/repo')).toBe(
      '/secret/data/zuul/scs/github.com/org/repo',
    );
    expect(apiPath('secret', 'data', 'a b/ü')).toBe('/secret/data/a%20b/%C3%BC');
  });

  it.each([
    ['dot-dot segment', 'zuul/../../sys/seal'],
    ['dot segment', 'zuul/./x'],
    ['empty segment', 'zuul//x'],
    ['leading slash', '/zuul/x'],
    ['trailing slash', 'zuul/x/'],
    ['percent escape', 'zuul/%2e%2e/x'],
    ['backslash', 'zuul\\..\\x'],
    ['query', 'zuul/x?version=1'],
    ['fragment', 'zuul/x#y'],
    ['newline', 'zuul/x\ny'],
    ['NUL', 'zuul/x\u0000'],
    ['DEL', 'zuul/x\u007f'],
    ['blank segment', 'zuul/ /x'],
  ])('refuses a %s', (_name, path) => {
    expect(() => apiPath('secret', 'data', path)).toThrow(UnsafePathError);
  });

  it('refuses an unsafe mount too', () => {
    expect(() => apiPath('..', 'data', 'x')).toThrow(UnsafePathError);
    expect(() => splitSegments('')).toThrow(UnsafePathError);
  });
});
