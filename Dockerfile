# syntax=docker/dockerfile:1
# vmcp's image: a static binary on distroless, running as nonroot.
#
#   docker build -t vmcp \
#     --build-arg VERSION=$(git describe --tags --always --dirty) \
#     --build-arg COMMIT=$(git rev-parse HEAD) \
#     --build-arg DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ) .
#   docker run -p 4483:4483 -v $PWD/config.yaml:/etc/vmcp/config.yaml:ro vmcp
#
# The build args feed `vmcp version` (the build context has no .git to
# stamp from); without them it says "dev".

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd ./cmd
COPY internal ./internal
ARG VERSION="" COMMIT="" DATE=""
# CGO off: a static binary that needs no libc in the final image.
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT} -X main.date=${DATE}" \
      -o /out/vmcp ./cmd/vmcp

# distroless/static: CA certificates, /etc/passwd with nonroot (65532),
# tzdata; no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/vmcp /usr/local/bin/vmcp
USER nonroot:nonroot
EXPOSE 4483
# The config's listen must not be loopback in a container, e.g.
#   listen: 0.0.0.0:4483
# (and then incomingAuth is required; see the README's Authentication).
# HEALTHCHECK runs vmcp itself: the image has no curl. Kubernetes ignores
# it and uses the probes of deploy/kubernetes/.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/vmcp", "health", "--url", "http://127.0.0.1:4483/health"]
ENTRYPOINT ["/usr/local/bin/vmcp"]
CMD ["serve", "--config", "/etc/vmcp/config.yaml"]
