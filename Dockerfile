# Build: a full Rust toolchain; run: a small Debian with only the binary.
FROM rust:1-bookworm AS build
WORKDIR /app
COPY Cargo.toml Cargo.lock ./
COPY src src
# Every member of the workspace, whole: cargo reads each manifest and its
# targets (tests, benches, examples) even to build one binary; the server
# embeds console/ and templates/.
COPY server server
COPY simulator simulator
COPY testkit testkit
RUN cargo build --release --locked --bin ringrelay

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home ringrelay
COPY --from=build /app/target/release/ringrelay /usr/local/bin/ringrelay
USER ringrelay
# Platforms set PORT; 8080 otherwise.
ENV PORT=8080 LOG_FORMAT=json
EXPOSE 8080
# SIGTERM stops it gracefully (streams closed, requests and notifications drained, ≤ 10 s).
STOPSIGNAL SIGTERM
CMD ["ringrelay"]
