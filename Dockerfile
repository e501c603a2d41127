# The broker image.
#   docker build -t zuul-secrets-broker .
#   docker run -v /path/config.yaml:/etc/zsb/config.yaml:ro ... zuul-secrets-broker
# The configuration is mounted at /etc/zsb/config.yaml (docs/configuration.md); the
# example policies are in /app/policies, the default `policies: ./policies`.

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# `prepare` would run tsc here, before the sources are copied: skip scripts and build
# explicitly below, so this layer stays cached while only src/ changes.
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# Runtime dependencies only; none of them needs an install script.
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY policies ./policies
USER node
EXPOSE 8080
# Assumes the configuration listens on plain http, port 8080.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/healthz').then((r)=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Node is PID 1 and gets SIGTERM (graceful shutdown) and SIGHUP (policy reload) directly.
# Memory before speed (BENCHMARKS.md): V8 collects garbage eagerly and keeps the young
# generation small, so the broker stays under 100 MB RSS under load, at about a third more
# CPU per request. --optimize-for-size cannot go into NODE_OPTIONS, hence here. No hard
# heap cap: a large policy set (10,000 grants) needs more than 96 MB while it is parsed.
ENTRYPOINT ["node", "--optimize-for-size", "--max-semi-space-size=4", "dist/cli/index.js"]
CMD ["serve", "--config", "/etc/zsb/config.yaml"]
