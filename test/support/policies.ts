/** A small policy set shared by the HTTP unit tests. */
export const TEST_POLICY = `
secrets:
  compliance-clouds:
    kv: { mount: secret, path: zuul/scs/standards/clouds }
  project-deploy-key:
    kv: { mount: secret, path: "zuul/{tenant}/{project}/deploy", keys: [private_key] }
  wrapped-only:
    kv: { mount: secret, path: zuul/scs/wrapped }
  never-wrapped:
    kv: { mount: secret, path: zuul/scs/plain }
  someone-elses:
    kv: { mount: secret, path: zuul/other/secret }
grants:
  - name: compliance-checks
    match:
      tenant: scs
      project: github.com/SovereignCloudStack/standards
      secret: openbao-id
      pipeline: [post, periodic-daily]
      job: "scs-compliance-*"
    allow: [compliance-clouds, project-deploy-key, never-wrapped]
    ttl: 15m
    wrap: never
  - name: wrapped
    match: { tenant: scs, pipeline: periodic-daily }
    allow: [wrapped-only]
    wrap: required
  - name: compliance-wrap-ok
    match: { tenant: scs, pipeline: periodic-daily, job: "scs-compliance-*" }
    allow: [compliance-clouds]
    wrap: optional
  - name: other-tenant
    match: { tenant: other }
    allow: [someone-elses]
`;

export const CLOUDS = { username: 'ci', password: 'clouds-password-1' };
