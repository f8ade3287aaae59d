# devin-orch container image: build on Debian bookworm, run on bookworm-slim as a non-root
# numeric user. Mount a directory (not a file) at /var/lib/devin-orch: SQLite's WAL needs its
# side files. The API key: set api.api_key_file to a mounted secret (e.g. /run/secrets/devin-api-key)
# or pass DEVIN_API_KEY.
FROM debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ cmake ninja-build pkg-config \
      libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev \
      libssl-dev libsqlite3-dev libspdlog-dev libyaml-cpp-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY include ./include
COPY src ./src
COPY config ./config
COPY systemd ./systemd
COPY docs ./docs
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DDEVIN_ORCH_TESTS=OFF \
 && cmake --build /build --target devin-orch \
 && strip /build/devin-orch

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates libssl3 libsqlite3-0 libspdlog1.10 libyaml-cpp0.7 \
      libboost-json1.81.0 libboost-url1.81.0 \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/devin-orch /etc/devin-orch \
 && chown 10001:10001 /var/lib/devin-orch && chmod 0700 /var/lib/devin-orch
COPY --from=build /build/devin-orch /usr/bin/devin-orch
COPY config/devin-orch.yaml /etc/devin-orch/devin-orch.yaml
ENV DEVIN_ORCH_DATABASE=/var/lib/devin-orch/devin-orch.db
USER 10001:10001
VOLUME ["/var/lib/devin-orch"]
ENTRYPOINT ["/usr/bin/devin-orch"]
CMD ["run", "--config", "/etc/devin-orch/devin-orch.yaml"]
