/**
 * The policy examples of docs/ready-files.md load: every ```yaml block there that starts
 * with `secrets:` is a valid policy file, and each of its renderings renders dummy data.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatProblem, parsePolicyFiles } from '../../../src/policy/load.js';
import { renderFile } from '../../../src/render/render.js';

const DOC = path.resolve(import.meta.dirname, '../../../docs/ready-files.md');
const examples = [...readFileSync(DOC, 'utf8').matchAll(/```yaml\n(secrets:\n[\s\S]*?)```/g)].map(
  (m) => m[1] ?? '',
);

describe('docs/ready-files.md policy examples', () => {
  it('has examples to check', () => {
    expect(examples.length).toBeGreaterThanOrEqual(3);
  });

  it.each(examples.map((text, i) => [i + 1, text] as const))(
    'example %i loads and renders',
    (_, text) => {
      const result = parsePolicyFiles([{ name: 'example.yaml', text }], { maxTtlSeconds: 3600 });
      if (!result.ok) throw new Error(result.problems.map(formatProblem).join('\n'));
      const rendered = [...result.set.secrets.values()].filter((s) => s.render !== undefined);
      expect(rendered.length).toBeGreaterThan(0);
      for (const secret of rendered) {
        const spec = secret.render;
        if (spec === undefined) continue;
        const data = Object.fromEntries(
          Object.values(spec.fields).map((key) => [key, `dummy-${key}`]),
        );
        expect(renderFile(spec, data).ok).toBe(true);
      }
    },
  );
});
