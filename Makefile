# vmcp — common tasks. `make test` is the one test command (README, CI).
GO ?= go
STATICCHECK = honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: build run test vet staticcheck unit conformance manifests image bench clean jaeger helm

build:
	$(GO) build -o bin/vmcp ./cmd/vmcp

# Run the gateway on its built-in demo.
run: build
	./bin/vmcp serve

# Everything CI checks: vet, staticcheck, unit and integration tests with
# the race detector, then the official MCP conformance suites through vmcp.
test: vet staticcheck unit manifests conformance

vet:
	$(GO) vet ./...

staticcheck:
	$(GO) run $(STATICCHECK) ./...

unit:
	$(GO) test -race -count=1 -timeout 15m ./...

# deploy/kubernetes/ and the Helm chart deploy/helm/vmcp against the
# Kubernetes API, offline: helm lint, then a strict decode into the API's Go
# types and kubeconform (a module of its own: vmcp's go.mod carries no
# k8s.io/api). The invariants both must keep are
# deploy/kubernetes/manifests_test.go's, in `make unit`. Needs bin/helm.
manifests: bin/helm
	bin/helm lint --strict deploy/helm/vmcp
	cd deploy/kubernetes/schema && $(GO) test -count=1 ./...
	if command -v kubectl >/dev/null 2>&1; then kubectl kustomize deploy/kubernetes >/dev/null; fi

# The container image; the build args feed `vmcp version`.
image:
	docker build -t vmcp:$$(git describe --tags --always --dirty) \
		--build-arg VERSION=$$(git describe --tags --always --dirty) \
		--build-arg COMMIT=$$(git rev-parse HEAD) \
		--build-arg DATE=$$(date -u +%Y-%m-%dT%H:%M:%SZ) .

clean:
	rm -rf bin

# Jaeger all-in-one for the tracing test (internal/gateway/tracing_test.go
# looks for bin/jaeger). Its module is tools/jaeger, apart from vmcp's: its
# dependency tree is huge and none of it is vmcp's.
jaeger: bin/jaeger

bin/jaeger: tools/jaeger/go.mod tools/jaeger/go.sum
	cd tools/jaeger && $(GO) build -o ../../bin/jaeger github.com/jaegertracing/jaeger/cmd/jaeger

# Helm, to lint and render deploy/helm/vmcp in `make manifests`; a module
# of its own (tools/helm) for the same reason as Jaeger's.
helm: bin/helm

bin/helm: tools/helm/go.mod tools/helm/go.sum
	cd tools/helm && $(GO) build -o ../../bin/helm helm.sh/helm/v3/cmd/helm

# The official MCP conformance suites against vmcp (needs node >= 20, npm).
conformance:
	./conformance/run.sh

# The performance scenarios of bench/ (writes bench/RESULTS.md).
bench:
	$(GO) run ./bench
