# The broker image.
#   docker build -t zuul-secrets-broker .
#   docker run --read-only -v /path/config.yaml:/etc/zsb/config.yaml:ro ... zuul-secrets-broker
# The configuration is mounted at /etc/zsb/config.yaml (docs/configuration.md); the
# example policies are in /app/policies, the default `policies: ./policies`.
#
# BASE_IMAGE is the runtime base (Node.js 20 with `node` on PATH), BUILD_IMAGE the base of
# the build stages (Node.js 20 and npm; the same image by default). CI builds on local
# Debian trixie images instead (scripts/setup-deploy.sh, docs/deploy.md):
#   podman build --build-arg BASE_IMAGE=localhost/zsb-base-node20:trixie \
#                --build-arg BUILD_IMAGE=localhost/zsb-build-node20:trixie .
ARG BASE_IMAGE=node:20-bookworm-slim
ARG BUILD_IMAGE=${BASE_IMAGE}

FROM ${BUILD_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# `prepare` would run tsc here, before the sources are copied: skip scripts and build
# explicitly below, so this layer stays cached while only src/ changes.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Runtime dependencies only (none of them needs an install script), in a stage of their
# own so that the runtime image needs no npm.
FROM ${BUILD_IMAGE} AS production-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${BASE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
# uid 1000 as in the node images (user `node`); created where the base has no such user.
# The broker writes nothing below /: it runs on a read-only root file system.
RUN getent passwd 1000 >/dev/null || useradd --uid 1000 --user-group --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin zsb
COPY package.json package-lock.json ./
COPY --from=production-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY policies ./policies
# Numeric, so that Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
USER 1000:1000
EXPOSE 8080
# Assumes the configuration listens on plain http, port 8080.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/healthz').then((r)=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Node is PID 1 and gets SIGTERM (graceful shutdown) and SIGHUP (policy reload) directly.
# The young generation is sized here, not by the container (ADR 0020): Node sizes V8's heap
# from the memory it may use (the cgroup limit): 1 MB semi-spaces in the chart's 384Mi pod
# (1.6x the CPU per fetch), 16 MB on a large host (about 135 MB RSS under load). 4 MB:
# about 110 MB RSS under a saturating load at about Node's CPU per fetch (BENCHMARKS.md,
# "Memory under load with Node's defaults"). No --optimize-for-size (1.5x the CPU per fetch
# for 3-5 MB less) and no hard heap cap: 10,000 grants need about 250 MB while parsed.
ENTRYPOINT ["node", "--max-semi-space-size=4", "dist/cli/index.js"]
CMD ["serve", "--config", "/etc/zsb/config.yaml"]
