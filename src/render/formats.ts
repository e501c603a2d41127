/**
 * The ready-file formats: what each needs (options from the policy, fields from the
 * secret) and how it is written. YAML and JSON are emitted by the yaml library and
 * JSON.stringify from data, never by pasting values into text, so no value can break
 * the file's syntax. YAML strings are double-quoted and keys quoted as YAML 1.1 needs
 * them: the tools read these files with YAML 1.1 parsers (PyYAML for openstacksdk,
 * go-yaml for kubectl), which take an unquoted `yes` or `0777` for a boolean or a number.
 */
import { stringify } from 'yaml';
import type { RenderFormat } from './types.js';

/** A value the file cannot hold: the message names the field and the rule, never the value. */
export class RenderError extends Error {
  override readonly name = 'RenderError';
}

/** Options are checked at policy load; this returns the problem, or undefined. */
type OptionCheck = (value: string) => string | undefined;

export interface OptionDefinition {
  readonly required: boolean;
  readonly check: OptionCheck;
  /** What the option is, for `policy explain` and errors. */
  readonly about: string;
}

export interface FormatDefinition {
  readonly options: Readonly<Record<string, OptionDefinition>>;
  /** The format's fields → whether the file needs them; named in the secret by `fields:`. */
  readonly fields: Readonly<Record<string, { readonly required: boolean }>>;
  /** `value(field)` is the field's text, or undefined for an absent optional field. */
  render(
    options: Readonly<Record<string, string>>,
    value: (field: string) => string | undefined,
  ): string;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
const WHITESPACE_OR_CONTROL = /[\s\u0000-\u001f\u007f-\u009f]/;

/** A name written as a YAML key or a host: printable, no whitespace. */
const token: OptionCheck = (v) =>
  WHITESPACE_OR_CONTROL.test(v) ? 'must not contain whitespace or control characters' : undefined;

const httpUrl: OptionCheck = (v) => {
  if (WHITESPACE_OR_CONTROL.test(v)) return 'must be a URL without whitespace';
  try {
    const url = new URL(v);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'must be an http(s) URL';
    if (url.username !== '' || url.password !== '') return 'must not carry credentials';
    return undefined;
  } catch {
    return 'must be an http(s) URL';
  }
};

const oneOf =
  (...values: string[]): OptionCheck =>
  (v) =>
    values.includes(v) ? undefined : `must be one of ${values.join(', ')}`;

/** YAML 1.1's merge key: the yaml library writes the string `<<` as it, unquoted. */
const MERGE_TAG = 'tag:yaml.org,2002:merge';

/** YAML as the tools' YAML 1.1 parsers read it back: every string double-quoted. */
function yamlFile(data: unknown): string {
  return stringify(data, {
    version: '1.1',
    defaultStringType: 'QUOTE_DOUBLE',
    defaultKeyType: 'PLAIN',
    lineWidth: 0,
    // Without the merge tag a value `<<` is a string like any other (double-quoted);
    // with it, PyYAML reads the bare `<<` as a merge and refuses the file.
    customTags: (tags) => tags.filter((tag) => typeof tag === 'string' || tag.tag !== MERGE_TAG),
  });
}

function need(value: (field: string) => string | undefined, field: string): string {
  const v = value(field);
  // Required fields are checked before rendering; this keeps the types honest.
  if (v === undefined) throw new RenderError(`field '${field}' is missing`);
  return v;
}

/**
 * Characters the yaml library writes as they are inside a double-quoted string, where
 * YAML 1.1 readers refuse them (DEL, the C1 controls, U+FFFE, U+FFFF: PyYAML's
 * "unacceptable character") or change them (NEL, read as a line break and folded to a
 * space).
 */
const YAML_UNWRITTEN = /[\u007f-\u009f\ufffe\uffff]/;

/** A required field's text for a YAML file. */
function yamlText(value: (field: string) => string | undefined, field: string): string {
  const v = need(value, field);
  if (YAML_UNWRITTEN.test(v)) {
    throw new RenderError(
      `field '${field}' contains a character YAML 1.1 readers cannot read back (U+007F to U+009F, U+FFFE, U+FFFF)`,
    );
  }
  return v;
}

/** OpenStack's clouds.yaml with a Keystone application credential (openstacksdk, the openstack CLI). */
const cloudsYaml: FormatDefinition = {
  options: {
    cloud: { required: true, check: token, about: 'the cloud name (OS_CLOUD)' },
    authUrl: { required: true, check: httpUrl, about: "Keystone's URL" },
    region: { required: false, check: token, about: 'region_name' },
    interface: {
      required: false,
      check: oneOf('public', 'internal', 'admin'),
      about: 'the endpoint interface',
    },
  },
  fields: {
    application_credential_id: { required: true },
    application_credential_secret: { required: true },
  },
  render(options, value) {
    const cloud: Record<string, unknown> = {
      auth_type: 'v3applicationcredential',
      auth: {
        auth_url: options.authUrl,
        application_credential_id: yamlText(value, 'application_credential_id'),
        application_credential_secret: yamlText(value, 'application_credential_secret'),
      },
      ...(options.region === undefined ? {} : { region_name: options.region }),
      ...(options.interface === undefined ? {} : { interface: options.interface }),
      identity_api_version: 3,
    };
    return yamlFile({ clouds: { [options.cloud ?? '']: cloud } });
  },
};

/** Docker's (and podman's) config.json with one registry login, as `docker login` writes it. */
const dockerConfig: FormatDefinition = {
  options: {
    registry: {
      required: true,
      check: token,
      about: 'the registry as docker login names it (host[:port], or https://index.docker.io/v1/)',
    },
  },
  fields: { username: { required: true }, password: { required: true } },
  render(options, value) {
    const username = need(value, 'username');
    // docker splits the decoded `auth` at its first ':'.
    if (username.includes(':')) throw new RenderError("field 'username' contains ':'");
    const auth = Buffer.from(`${username}:${need(value, 'password')}`, 'utf8').toString('base64');
    return `${JSON.stringify({ auths: { [options.registry ?? '']: { auth } } }, null, 2)}\n`;
  },
};

/** A kubeconfig with one cluster, one bearer-token user and one current context. */
const kubeconfig: FormatDefinition = {
  options: {
    server: { required: true, check: httpUrl, about: "the API server's URL" },
    cluster: { required: true, check: token, about: 'the cluster, user and context name' },
    namespace: { required: false, check: token, about: "the context's namespace" },
  },
  fields: { token: { required: true }, ca_certificate: { required: false } },
  render(options, value) {
    const name = options.cluster ?? '';
    const ca = value('ca_certificate');
    const cluster: Record<string, string> = { server: options.server ?? '' };
    if (ca !== undefined) {
      cluster['certificate-authority-data'] = Buffer.from(ca, 'utf8').toString('base64');
    }
    const context: Record<string, string> = { cluster: name, user: name };
    if (options.namespace !== undefined) context.namespace = options.namespace;
    return yamlFile({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name, cluster }],
      users: [{ name, user: { token: yamlText(value, 'token') } }],
      contexts: [{ name, context }],
      'current-context': name,
    });
  },
};

/** A .netrc entry (curl, git over https, pip, Python's netrc). */
const netrc: FormatDefinition = {
  options: { machine: { required: true, check: token, about: 'the host' } },
  fields: { username: { required: true }, password: { required: true } },
  render(options, value) {
    const field = (name: string): string => {
      const v = need(value, name);
      // .netrc separates tokens by whitespace, with no quoting or escaping every reader
      // understands: curl reads "…" as quoted and a bare '\' as itself, Python 3.11+'s
      // netrc drops a '\' as an escape everywhere (pip would send another password).
      if (v === '' || WHITESPACE_OR_CONTROL.test(v) || v.startsWith('"') || v.includes('\\')) {
        throw new RenderError(
          `field '${name}' is empty or contains whitespace, a control character, a '\\' or a leading '"', which .netrc cannot hold`,
        );
      }
      return v;
    };
    return `machine ${options.machine}\nlogin ${field('username')}\npassword ${field('password')}\n`;
  },
};

/** `template` is rendered by render.ts from its parsed parts; it has one option. */
const template: FormatDefinition = {
  options: { template: { required: true, check: () => undefined, about: 'the template text' } },
  fields: {},
  render() {
    throw new RenderError('a template is rendered from its parts');
  },
};

export const FORMATS: Readonly<Record<RenderFormat, FormatDefinition>> = {
  'clouds.yaml': cloudsYaml,
  'docker-config.json': dockerConfig,
  kubeconfig,
  netrc,
  template,
};
