# syntax=docker/dockerfile:1
#
# latchkey container image.
#   docker build -t latchkey .
#   docker run -p 8080:8080 -v latchkey-data:/data latchkey      # single node, embedded SQLite in /data
# For PostgreSQL + Redis + several nodes, see docker-compose.yml and docs/DEPLOYMENT.md.

############################ build ############################
# Pinned: a rebuild gets the same toolchain and base until someone bumps these on purpose.
FROM rust:1.95.0-bookworm AS builder

# libpq for diesel's PostgreSQL backend (SQLite is bundled into the binary).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# Whole context (filtered by .dockerignore): migrations, templates and static
# assets are embedded into the binary at compile time, so they must be here.
COPY . .

# Cache the registry, git checkouts and target dir between builds; the target
# dir is a cache mount (not in the image), so copy the binary out in this step.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin latchkey \
 && install -m 0755 target/release/latchkey /usr/local/bin/latchkey

############################ runtime ############################
FROM debian:12.8-slim

# libpq5: PostgreSQL client library; ca-certificates: TLS to external services;
# curl: HEALTHCHECK probes.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 latchkey \
 && useradd --system --uid 10001 --gid latchkey --home-dir /data --no-create-home \
            --shell /usr/sbin/nologin latchkey \
 && mkdir -p /data \
 && chown latchkey:latchkey /data

COPY --from=builder /usr/local/bin/latchkey /usr/local/bin/latchkey

# Without DATABASE_URL from the environment the image runs the embedded SQLite
# store at /data/latchkey.db, and generates its master secret as
# /data/secret.key on first start: keep /data on a volume (and back it up).
ENV LATCHKEY_BIND=0.0.0.0:8080 \
    DATABASE_URL=sqlite:///data/latchkey.db \
    LATCHKEY_LOG_FORMAT=json \
    RUST_LOG=info

WORKDIR /data
VOLUME ["/data"]

# Numeric, so a runtime can check it is not root without reading /etc/passwd
# (Kubernetes runAsNonRoot); the same uid and gid as the latchkey user above.
USER 10001:10001
EXPOSE 8080

# Liveness only; docker-compose.yml overrides this with /readyz.
# The probe assumes the port of LATCHKEY_BIND is 8080.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD curl -fsS -o /dev/null http://127.0.0.1:8080/healthz || exit 1

ENTRYPOINT ["/usr/local/bin/latchkey"]
CMD ["serve"]
