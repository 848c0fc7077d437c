# syntax=docker/dockerfile:1
# ratelimitd as a static binary on a distroless base, running as an unprivileged user.
# Build from the repository's root:  docker build -t ratelimitd .
FROM golang:1.26 AS build
WORKDIR /src
COPY . .
# The workspace (go.work) builds the service against the library in this tree.
RUN --mount=type=cache,target=/root/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    cd cmd/ratelimitd && \
    CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/ratelimitd .

# static: no libc needed (CGO_ENABLED=0); CA certificates for rediss:// are included.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ratelimitd /usr/local/bin/ratelimitd
USER 65532:65532
# gRPC (Envoy RLS v3) and HTTP (/json, /v1/check, /healthz, /readyz, /metrics). The admin
# listener stays on loopback unless -admin and -admin-token say otherwise.
EXPOSE 8081 8080
ENTRYPOINT ["/usr/local/bin/ratelimitd"]
