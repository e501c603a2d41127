import { describe, expect, it } from 'vitest';
import {
  checkCommonNameTemplate,
  checkMount,
  checkPathTemplate,
  checkRole,
  renderCommonName,
  renderSecretPath,
} from '../../../src/policy/paths.js';
import type { PolicySubject } from '../../../src/policy/types.js';

const subject: PolicySubject = {
  issuer: 'https://zuul.example.org',
  tenant: 'scs',
  project: 'github.com/SovereignCloudStack/standards',
  secret: 'openbao-id',
  pipeline: 'post',
  job: 'scs-deploy',
  playbook: 'github.com/SovereignCloudStack/standards/playbooks/deploy.yaml',
  build: '5f1c0e6f3b1a4c7e9d2b8a6c4e0f1a2b',
};

describe('renderSecretPath', () => {
  it.each([
    ['zuul/scs/standards/clouds', 'zuul/scs/standards/clouds'],
    ['zuul/{tenant}/{project}/deploy', 'zuul/scs/github.com/SovereignCloudStack/standards/deploy'],
    [
      '{tenant}/{secret}/{job}/{build}',
      'scs/openbao-id/scs-deploy/5f1c0e6f3b1a4c7e9d2b8a6c4e0f1a2b',
    ],
    ['jobs/{job}-creds', 'jobs/scs-deploy-creds'],
  ])('fills %j', (template, path) => {
    const rendered = renderSecretPath(template, subject);
    expect(rendered).toEqual({ ok: true, path, segments: path.split('/') });
  });

  it.each([
    // [field override, template, reason]
    [
      { project: 'github.com/../secret' },
      'zuul/{project}/x',
      "filled path has a '.' or '..' segment",
    ],
    [{ project: 'github.com/./x' }, 'zuul/{project}/x', "filled path has a '.' or '..' segment"],
    [{ project: '../../sys' }, 'zuul/{project}', "filled path has a '.' or '..' segment"],
    [{ project: 'github.com//x' }, 'zuul/{project}/x', 'filled path has an empty segment'],
    [{ project: '/github.com/x' }, '{project}/x', "filled path starts or ends with '/'"],
    [{ project: 'github.com/x/' }, 'zuul/{project}', "filled path starts or ends with '/'"],
    [{ tenant: '..' }, 'zuul/{tenant}/x', "filled path has a '.' or '..' segment"],
    [{ tenant: 'a/b' }, 'zuul/{tenant}/x', '{tenant} would fill more than one segment'],
    [{ job: 'x/../../y' }, 'zuul/{job}', '{job} would fill more than one segment'],
    [{ secret: '' }, 'zuul/{secret}', '{secret} is empty'],
    [{ job: 'a%2e%2e' }, 'zuul/{job}', "filled path contains '%'"],
    [{ job: 'a?b' }, 'zuul/{job}', "filled path contains '?'"],
    [{ job: 'a#b' }, 'zuul/{job}', "filled path contains '#'"],
    [{ job: 'a\\b' }, 'zuul/{job}', "filled path contains '\\'"],
    [{ job: 'a\nb' }, 'zuul/{job}', 'filled path contains a control character'],
    [{ job: '   ' }, 'zuul/{job}', 'filled path has a blank segment'],
    [{ project: `a/${'b'.repeat(2100)}` }, 'zuul/{project}', 'filled path is longer than 2048'],
  ])('refuses %j in %j', (override, template, reason) => {
    const rendered = renderSecretPath(template, { ...subject, ...override });
    expect(rendered).toEqual({ ok: false, reason: expect.stringContaining(reason) });
  });

  it('never puts identity values into reasons (they are logged)', () => {
    const marker = 'CANARY';
    const hostile: PolicySubject = {
      ...subject,
      tenant: `${marker}/x`,
      project: `${marker}/../y`,
      job: `${marker}%`,
    };
    for (const template of ['{tenant}', '{project}', 'a/{job}']) {
      const rendered = renderSecretPath(template, hostile);
      expect(rendered.ok).toBe(false);
      if (!rendered.ok) expect(rendered.reason).not.toContain(marker);
    }
  });
});

describe('checkPathTemplate', () => {
  it.each([
    'zuul/scs/clouds',
    'zuul/{tenant}/{project}/deploy',
    '{project}',
    'a/{job}.{build}/b',
    'a.b/..c',
  ])('accepts %j', (template) => {
    expect(checkPathTemplate(template)).toBeUndefined();
  });

  it.each([
    ['', 'path is empty'],
    ['zuul/../other', "path has a '.' or '..' segment"],
    ['zuul/./x', "path has a '.' or '..' segment"],
    ['zuul//x', 'path has an empty segment'],
    ['/zuul/x', "path starts or ends with '/'"],
    ['zuul/x/', "path starts or ends with '/'"],
    ['zuul/%2e%2e/x', "path contains '%'"],
    ['zuul/x?y', "path contains '?'"],
    ['zuul/x#y', "path contains '#'"],
    ['zuul\\x', "path contains '\\'"],
    ['zuul/ /x', 'path has a blank segment'],
    ['zuul/\tx', 'path contains a control character'],
    ['zuul/{foo}/x', "unknown placeholder '{foo}'"],
    ['zuul/{Tenant}', "unknown placeholder '{Tenant}'"],
    ['zuul/{tenant', "'{' without a matching '}'"],
    ['zuul/tenant}', "'}' without a matching '{'"],
    ['zuul/{}', "unknown placeholder '{}'"],
    ['x'.repeat(1025), 'longer than 1024'],
  ])('refuses %j', (template, reason) => {
    expect(checkPathTemplate(template)).toContain(reason);
  });
});

describe('mounts, roles and common names', () => {
  it.each([
    [checkMount, 'secret', undefined],
    [checkMount, 'kv/team-a', undefined],
    [checkMount, '', 'mount is empty'],
    [checkMount, 'a/../b', "mount has a '.' or '..' segment"],
    [checkMount, '{tenant}', 'mount cannot use placeholders'],
    [checkMount, 'secret/', "mount starts or ends with '/'"],
    [checkRole, 'status-page-ro', undefined],
    [checkRole, 'a/b', "role cannot contain '/'"],
    [checkRole, '..', "role has a '.' or '..' segment"],
    [checkRole, '{job}', 'role cannot use placeholders'],
    [checkCommonNameTemplate, '{build}.ci.example.org', undefined],
    [checkCommonNameTemplate, '{project}.ci.example.org', "common name cannot use '{project}'"],
    [checkCommonNameTemplate, '{nope}.example.org', "unknown placeholder '{nope}'"],
    [checkCommonNameTemplate, '', 'common name is empty'],
  ])('%o(%j) → %j', (check, value, expected) => {
    const result = check(value);
    if (expected === undefined) expect(result).toBeUndefined();
    else expect(result).toContain(expected);
  });

  it('fills a common name only with DNS-safe values', () => {
    expect(renderCommonName('{build}.ci.example.org', subject)).toEqual({
      ok: true,
      name: '5f1c0e6f3b1a4c7e9d2b8a6c4e0f1a2b.ci.example.org',
    });
    expect(renderCommonName('{job}.ci.example.org', { ...subject, job: 'a b' })).toEqual({
      ok: false,
      reason: 'filled common name is not a valid DNS name',
    });
    expect(renderCommonName('{job}.ci.example.org', { ...subject, job: 'a/b' })).toEqual({
      ok: false,
      reason: '{job} would fill more than one segment',
    });
  });
});
