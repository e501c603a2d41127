import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isJsonMediaType, parseJsonBody } from '../../../src/http/body.js';

describe('parseJsonBody', () => {
  it.each([
    '{"a":1,"a":1}',
    '{"a":1,"b":{"c":[1,{"d":2,"d":3}]}}',
    '[{"x":1},{"y":2,"y":2}]',
    '{"a\\"b":1,"a\\u0022b":2}',
    '{"a":{"b":1},"a":2}',
    '{"":1,"":2}',
  ])('refuses %s (a key twice in one object)', (text) => {
    expect(parseJsonBody(text)).toEqual({ ok: false, reason: 'duplicate key' });
  });

  it.each([
    '{"a":1,"b":{"a":1}}',
    '[{"a":1},{"a":2}]',
    '{"a":"}, \\"a\\": {","b":"a"}',
    '{"a":["a","a"],"b":"a"}',
    '{"a\\\\":1,"a":2}',
    '{}',
    '"a"',
  ])('accepts %s (no object repeats a key)', (text) => {
    expect(parseJsonBody(text)).toEqual({ ok: true, value: JSON.parse(text) });
  });

  it('tells malformed text apart', () => {
    expect(parseJsonBody('{"a":')).toEqual({ ok: false, reason: 'malformed' });
  });

  it('accepts whatever JSON.stringify writes, with the value JSON.parse reads', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = JSON.stringify(value, null, Math.random() < 0.5 ? 0 : 2);
        expect(parseJsonBody(text)).toEqual({ ok: true, value: JSON.parse(text) });
      }),
      { numRuns: 500 },
    );
  });

  it('refuses every object of any JSON document once one of its keys is repeated', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string(), fc.jsonValue(), { minKeys: 1 }),
        fc.jsonValue(),
        (object, extra) => {
          const [key] = Object.keys(object);
          const text = `[${JSON.stringify(object).slice(0, -1)},${JSON.stringify(key)}:${JSON.stringify(extra)}}]`;
          expect(parseJsonBody(text)).toEqual({ ok: false, reason: 'duplicate key' });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('keeps a deep document on an array stack (no recursion)', () => {
    const deep = `${'['.repeat(100000)}${']'.repeat(100000)}`;
    expect(parseJsonBody(deep).ok).toBe(true);
  });
});

describe('isJsonMediaType', () => {
  it.each([
    ['application/json', true],
    ['application/json; charset=utf-8', true],
    ['APPLICATION/JSON;charset=UTF-8', true],
    ['application/json; charset="utf-8"', true],
    [undefined, false],
    ['', false],
    ['text/plain', false],
    ['application/json; charset=iso-8859-1', false],
    ['application/json; boundary=x', false],
    ['application/vnd.api+json', false],
    ['application/json, text/plain', false],
  ])('%s → %s', (header, expected) => {
    expect(isJsonMediaType(header)).toBe(expected);
  });
});
