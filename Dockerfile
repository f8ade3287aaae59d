# devin-orch container image: build on Debian bookworm, run on bookworm-slim as a non-root
# numeric user (docs/deployment.md). Mount a directory (not a file) at /var/lib/devin-orch:
# SQLite's WAL keeps side files next to the database. The API key: a secret mounted at
# /run/secrets/devin-api-key (owned by uid 10001, mode 0400), or DEVIN_API_KEY.
# Checked by tests/packaging/lint_dockerfile.py; built and smoke-run by scripts/container.sh.
FROM debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ cmake ninja-build pkg-config \
      libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev \
      libssl-dev libsqlite3-dev libpq-dev libspdlog-dev libfyaml-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Only what the daemon's build reads, least volatile first, so edits to docs or tests never
# invalidate the cached compile.
COPY CMakeLists.txt ./
COPY cmake ./cmake
# cmake/packaging.cmake reads the release's version and maintainer from it at configure time.
COPY packaging/changelog ./packaging/changelog
COPY config ./config
COPY include ./include
COPY src ./src
# The build context has no .git, so the commit comes from the builder
# (docker build --build-arg GIT_COMMIT=$(git rev-parse HEAD) .); build_info says "unknown" without.
ARG GIT_COMMIT=""
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DDEVIN_ORCH_TESTS=OFF \
      "-DDEVIN_ORCH_GIT_COMMIT=${GIT_COMMIT}" \
 && cmake --build /build --target devin-orch \
 && strip /build/devin-orch

FROM debian:bookworm-slim
LABEL org.opencontainers.image.title="devin-orch" \
      org.opencontainers.image.description="Exactly-once orchestration of Devin sessions"
# The shared libraries the binary links (readelf -d: Boost.JSON/URL, spdlog, fmt, libfyaml,
# OpenSSL, SQLite, libpq, libstdc++ and glibc), plus the CA store for TLS to the API and to a
# PostgreSQL server.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates libssl3 libsqlite3-0 libpq5 libboost-json1.81.0 libboost-url1.81.0 \
      libspdlog1.10 libfmt9 libfyaml0 \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/devin-orch \
 && chown 10001:10001 /var/lib/devin-orch \
 && chmod 0700 /var/lib/devin-orch
COPY --from=build /build/devin-orch /usr/bin/devin-orch
COPY config/devin-orch.yaml /etc/devin-orch/devin-orch.yaml
# The daemon looks for $CREDENTIALS_DIRECTORY/devin-api-key first and falls back to
# api.api_key_file and DEVIN_API_KEY when it is absent, so /run/secrets is a safe default.
ENV DEVIN_ORCH_DATABASE=/var/lib/devin-orch/devin-orch.db \
    CREDENTIALS_DIRECTORY=/run/secrets
USER 10001:10001
VOLUME ["/var/lib/devin-orch"]
# SIGTERM drains in-flight requests (shutdown.drain_timeout, 10 s): give the container a stop
# timeout above that (docker stop -t 30, compose stop_grace_period: 30s).
STOPSIGNAL SIGTERM
# The health check asks the daemon at the metrics address of the configuration the daemon
# reads, so both name the same file (checked by the lint). Running another configuration means
# overriding both: CMD and --health-cmd (compose: healthcheck.test).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/bin/devin-orch", "healthcheck", "--config", "/etc/devin-orch/devin-orch.yaml"]
ENTRYPOINT ["/usr/bin/devin-orch"]
CMD ["run", "--config", "/etc/devin-orch/devin-orch.yaml"]
