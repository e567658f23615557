# syntax=docker/dockerfile:1.7
# The customer-api image: built in a Rust image, run from a distroless one
# (glibc and libgcc only: no shell, no package manager, no HTTP client; the
# binary probes itself with `customer-api probe`). Runs as a non-root user.
#
#   docker build --build-arg GIT_COMMIT=$(git rev-parse --short HEAD) -t customer-api .
#   docker run --rm -e DATABASE_URL=postgres://… -e TOKEN_SECRET=… -p 8080:8080 customer-api
#   docker run --rm -e DATABASE_URL=postgres://… customer-api migrate   (the one-off migration job)

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
COPY . .
# Shown in customer_api_build_info{commit=…}: --build-arg GIT_COMMIT=$(git rev-parse --short HEAD)
ARG GIT_COMMIT=
# Cache mounts keep the registry and the build between image builds; the
# binary is copied out of the cached target directory.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin customer-api \
 && cp target/release/customer-api /customer-api

# The ldd check in deploy/check.sh keeps the binary within what this image has.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /customer-api /usr/local/bin/customer-api
ENV LISTEN_ADDR=0.0.0.0:8080 \
    LOG_FORMAT=json \
    RUST_LOG=info
EXPOSE 8080
USER nonroot:nonroot
HEALTHCHECK --interval=10s --timeout=6s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/customer-api", "probe", "/readyz"]
ENTRYPOINT ["/usr/local/bin/customer-api"]
CMD ["serve"]
