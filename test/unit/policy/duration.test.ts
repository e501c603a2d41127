import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../../src/policy/duration.js';

describe('parseDuration', () => {
  it.each([
    [900, 900],
    [1, 1],
    ['30s', 30],
    ['15m', 900],
    ['1h', 3600],
    ['7d', 604800],
    ['1h30m', 5400],
    ['1d2h3m4s', 93784],
    ['1h0m', 3600],
  ])('accepts %j as %i seconds', (input, seconds) => {
    expect(parseDuration(input)).toBe(seconds);
  });

  it.each([
    [0],
    [-5],
    [1.5],
    [Number.NaN],
    [Number.POSITIVE_INFINITY],
    [''],
    ['900'],
    ['0s'],
    ['0h0m'],
    ['-5m'],
    ['1.5h'],
    ['1 h'],
    [' 1h'],
    ['1H'],
    ['1w'],
    ['30m1h'],
    ['1h1h'],
    ['h'],
    ['1hm'],
    ['1234567890s'],
  ])('rejects %j', (input) => {
    expect(parseDuration(input)).toBeUndefined();
  });
});

describe('formatDuration', () => {
  it.each([
    [90, '1m30s'],
    [3600, '1h'],
    [93784, '1d2h3m4s'],
    [0, '0s'],
  ])('formats %i as %s', (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
    if (seconds > 0) expect(parseDuration(text)).toBe(seconds);
  });
});
