/**
 * Secret path templates (`kv.path`, `pki.commonName`) and their filling from a
 * verified identity. A filled path must stay inside its mount (policy.md
 * "Matching"): the template is checked once at load, the filled result on every
 * request, segment by segment, because placeholder values come from tokens.
 *
 * Reasons returned here end up in logs, so they name placeholders and rules,
 * never the identity values themselves.
 */
import { hasControlCharacter } from './characters.js';
import type { PolicySubject } from './types.js';

export const PLACEHOLDERS = ['tenant', 'project', 'secret', 'job', 'build'] as const;
export type Placeholder = (typeof PLACEHOLDERS)[number];

/**
 * Only `{project}` is a path of its own (`host/org/repo`); every other value
 * must fill exactly one segment, or a tenant such as `a/b` could step into
 * another tenant's subtree.
 */
const MULTI_SEGMENT: ReadonlySet<Placeholder> = new Set(['project']);

const MAX_TEMPLATE_LENGTH = 1024;
const MAX_FILLED_LENGTH = 2048;
const FORBIDDEN_CHARACTERS = ['%', '\\', '?', '#'] as const;

type TemplatePart = { readonly literal: string } | { readonly placeholder: Placeholder };

type ParsedTemplate =
  | { readonly ok: true; readonly parts: readonly TemplatePart[] }
  | { readonly ok: false; readonly reason: string };

function isPlaceholder(name: string): name is Placeholder {
  return (PLACEHOLDERS as readonly string[]).includes(name);
}

const KNOWN_PLACEHOLDERS = PLACEHOLDERS.map((p) => `{${p}}`).join(', ');

function parseTemplate(template: string): ParsedTemplate {
  const parts: TemplatePart[] = [];
  let rest = template;
  while (rest !== '') {
    const open = rest.indexOf('{');
    const close = rest.indexOf('}');
    if (close !== -1 && (open === -1 || close < open)) {
      return { ok: false, reason: "'}' without a matching '{'" };
    }
    if (open === -1) {
      parts.push({ literal: rest });
      break;
    }
    if (open > 0) parts.push({ literal: rest.slice(0, open) });
    if (close === -1) return { ok: false, reason: "'{' without a matching '}'" };
    const name = rest.slice(open + 1, close);
    if (!isPlaceholder(name)) {
      // The name comes from the policy file, not from an identity: safe to show.
      return {
        ok: false,
        reason: `unknown placeholder '{${name}}' (known: ${KNOWN_PLACEHOLDERS})`,
      };
    }
    parts.push({ placeholder: name });
    rest = rest.slice(close + 1);
  }
  return { ok: true, parts };
}

/** Problem with one segment, or undefined. `what` is "path" or "filled path". */
function checkSegment(segment: string, what: string): string | undefined {
  if (segment === '') return `${what} has an empty segment`;
  if (segment === '.' || segment === '..') return `${what} has a '.' or '..' segment`;
  if (segment.trim() === '') return `${what} has a blank segment`;
  if (hasControlCharacter(segment)) return `${what} contains a control character`;
  for (const ch of FORBIDDEN_CHARACTERS) {
    if (segment.includes(ch)) return `${what} contains '${ch}'`;
  }
  return undefined;
}

function checkWholePath(path: string, what: string): string | undefined {
  if (path.startsWith('/') || path.endsWith('/')) return `${what} starts or ends with '/'`;
  for (const segment of path.split('/')) {
    const problem = checkSegment(segment, what);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

function checkTemplateShape(template: string, what: string): string | undefined {
  if (template === '') return `${what} is empty`;
  if (template.length > MAX_TEMPLATE_LENGTH) {
    return `${what} is longer than ${MAX_TEMPLATE_LENGTH} characters`;
  }
  if (hasControlCharacter(template)) return `${what} contains a control character`;
  const parsed = parseTemplate(template);
  if (!parsed.ok) return parsed.reason;
  // Placeholders stand in as a harmless letter so the literal structure is checked
  // as written; the filled values are checked again on every request.
  const shape = parsed.parts.map((part) => ('literal' in part ? part.literal : 'x')).join('');
  return checkWholePath(shape, what);
}

/** Load-time check of a path template; an error message, or undefined when it is sound. */
export function checkPathTemplate(template: string): string | undefined {
  return checkTemplateShape(template, 'path');
}

/** Load-time check of a mount (`secret`, `kv/team`): a fixed path without placeholders. */
export function checkMount(mount: string): string | undefined {
  if (mount.includes('{') || mount.includes('}')) return 'mount cannot use placeholders';
  return checkTemplateShape(mount, 'mount');
}

/** Load-time check of a database or PKI role name: one fixed segment. */
export function checkRole(role: string): string | undefined {
  if (role.includes('{') || role.includes('}')) return 'role cannot use placeholders';
  if (role.includes('/')) return "role cannot contain '/'";
  return checkTemplateShape(role, 'role');
}

/** Load-time check of a `pki.commonName` template; an error message, or undefined. */
export function checkCommonNameTemplate(template: string): string | undefined {
  if (template === '') return 'common name is empty';
  if (template.length > MAX_TEMPLATE_LENGTH) {
    return `common name is longer than ${MAX_TEMPLATE_LENGTH} characters`;
  }
  if (hasControlCharacter(template)) return 'common name contains a control character';
  const parsed = parseTemplate(template);
  if (!parsed.ok) return parsed.reason;
  // A project always contains '/', which no DNS name may: the request would always fail.
  if (parsed.parts.some((part) => 'placeholder' in part && MULTI_SEGMENT.has(part.placeholder))) {
    return "common name cannot use '{project}' (it contains '/')";
  }
  return undefined;
}

type Filled =
  | { readonly ok: true; readonly text: string }
  | { readonly ok: false; readonly reason: string };

function fill(template: string, subject: PolicySubject, singleSegmentOnly: boolean): Filled {
  const parsed = parseTemplate(template);
  if (!parsed.ok) return { ok: false, reason: `template is invalid: ${parsed.reason}` };
  let text = '';
  for (const part of parsed.parts) {
    if ('literal' in part) {
      text += part.literal;
      continue;
    }
    const value = subject[part.placeholder];
    if (value === '') return { ok: false, reason: `{${part.placeholder}} is empty` };
    if (value.includes('/') && (singleSegmentOnly || !MULTI_SEGMENT.has(part.placeholder))) {
      return { ok: false, reason: `{${part.placeholder}} would fill more than one segment` };
    }
    text += value;
  }
  return { ok: true, text };
}

export type RenderedPath =
  | { readonly ok: true; readonly path: string; readonly segments: readonly string[] }
  | { readonly ok: false; readonly reason: string };

/** Fills a `kv.path` template; the path is relative to the secret's mount. */
export function renderSecretPath(template: string, subject: PolicySubject): RenderedPath {
  const filled = fill(template, subject, false);
  if (!filled.ok) return filled;
  if (filled.text.length > MAX_FILLED_LENGTH) {
    return { ok: false, reason: `filled path is longer than ${MAX_FILLED_LENGTH} characters` };
  }
  const problem = checkWholePath(filled.text, 'filled path');
  if (problem !== undefined) return { ok: false, reason: problem };
  return { ok: true, path: filled.text, segments: filled.text.split('/') };
}

const DNS_NAME =
  /^(?:\*\.)?[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*$/;

export type RenderedName =
  | { readonly ok: true; readonly name: string }
  | { readonly ok: false; readonly reason: string };

/**
 * Fills a `pki.commonName` template. The result must be a DNS-style name
 * (labels of letters, digits, `-`, `_`; an optional leading `*.`), so an identity
 * value cannot smuggle separators or spaces into a certificate request.
 */
export function renderCommonName(template: string, subject: PolicySubject): RenderedName {
  const filled = fill(template, subject, true);
  if (!filled.ok) return filled;
  if (filled.text.length > 253 || !DNS_NAME.test(filled.text)) {
    return { ok: false, reason: 'filled common name is not a valid DNS name' };
  }
  return { ok: true, name: filled.text };
}
