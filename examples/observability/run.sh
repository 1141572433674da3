#!/usr/bin/env bash
# vmcp with its observability on loopback: a real Prometheus scraping it, a
# real Jaeger receiving its traces over OTLP, the audit trail in a file,
# and two example backends (one over Streamable HTTP, one stdio).
#
#   examples/observability/run.sh          # start everything; Ctrl-C stops it all
#   examples/observability/run.sh --demo   # start, run a session, show what each part saw, stop
#
# Needs Go, curl, prometheus (apt-get install prometheus) and Jaeger
# (make jaeger builds bin/jaeger). Ports: vmcp 4483, Prometheus 9090,
# Jaeger UI/API 16686, OTLP/HTTP 4318, example backend 8092.
# Grafana: import grafana-dashboard.json and point its Prometheus data
# source at http://127.0.0.1:9090.
set -euo pipefail

demo=false
[[ ${1:-} == --demo ]] && demo=true
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."
command -v prometheus >/dev/null || { echo "prometheus not found (apt-get install prometheus)" >&2; exit 1; }
[[ -x bin/jaeger ]] || { echo "bin/jaeger not found: run make jaeger" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	echo "logs and the audit trail were in $work (removed)"
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building vmcp and the example server..."
go build -o "$work/" ./cmd/vmcp ./cmd/vmcp-example-server

JAEGER_LISTEN_HOST=127.0.0.1 bin/jaeger >"$work/jaeger.log" 2>&1 &
pids+=($!)
prometheus --config.file="$here/prometheus.yml" --storage.tsdb.path="$work/prometheus" \
	--web.listen-address=127.0.0.1:9090 >"$work/prometheus.log" 2>&1 &
pids+=($!)
"$work/vmcp-example-server" -transport http -listen 127.0.0.1:8092 -name web >/dev/null 2>"$work/web.log" &
pids+=($!)

cat >"$work/vmcp.yaml" <<YAML
listen: 127.0.0.1:4483
backends:
  - name: web
    transport: streamable-http
    url: http://127.0.0.1:8092/mcp
  - name: files
    transport: stdio
    command: ["$work/vmcp-example-server", "-name", "files"]
telemetry:
  toolLabels: true
  tracing:
    endpoint: http://127.0.0.1:4318
    protocol: http/protobuf
    sampling: 1.0
audit:
  path: $work/audit.jsonl
YAML
"$work/vmcp" serve --config "$work/vmcp.yaml" --log-level debug 2>"$work/vmcp.log" &
pids+=($!)

wait_for() { # URL WHAT
	for _ in $(seq 300); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
	echo "$2 did not come up; its log:" >&2
	cat "$work/$2.log" >&2
	exit 1
}
wait_for http://127.0.0.1:4483/readyz vmcp
wait_for http://127.0.0.1:9090/-/ready prometheus
wait_for http://127.0.0.1:16686/api/services jaeger

echo "vmcp:        http://127.0.0.1:4483/mcp   (metrics http://127.0.0.1:4483/metrics, log $work/vmcp.log)"
echo "Prometheus:  http://127.0.0.1:9090"
echo "Jaeger UI:   http://127.0.0.1:16686      (service vmcp)"
echo "audit trail: $work/audit.jsonl"

post() { # SESSION BODY
	curl -s http://127.0.0.1:4483/mcp -H 'Content-Type: application/json' \
		-H 'Accept: application/json, text/event-stream' -H "Mcp-Session-Id: $1" -d "$2" | sed -n 's/^data: //; /^{/p'
}

if $demo; then
	sid=$(curl -si http://127.0.0.1:4483/mcp -H 'Content-Type: application/json' \
		-H 'Accept: application/json, text/event-stream' \
		-H 'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' \
		-d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}' |
		tr -d '\r' | sed -n 's/^[Mm]cp-[Ss]ession-[Ii]d: //p')
	[[ -n $sid ]] || { echo "initialize failed" >&2; exit 1; }
	post "$sid" '{"jsonrpc":"2.0","method":"notifications/initialized"}' >/dev/null
	for i in 1 2 3; do
		post "$sid" '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"web_echo","arguments":{"text":"hi"}}}' >/dev/null
		post "$sid" '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"files_whoami","arguments":{}}}' >/dev/null
	done
	curl -s -o /dev/null -X DELETE http://127.0.0.1:4483/mcp -H "Mcp-Session-Id: $sid"
	echo; echo "== audit trail"; cat "$work/audit.jsonl"
	echo; echo "== Prometheus: calls per backend (once a scrape has them; every 5 s)"
	for _ in $(seq 60); do
		answer=$(curl -s 'http://127.0.0.1:9090/api/v1/query' --data-urlencode \
			'query=sum by (backend) (vmcp_backend_call_duration_seconds_count{method="tools/call"})')
		[[ $answer == *'"backend"'* ]] && break
		sleep 0.5
	done
	echo "$answer"
	echo; echo "== Jaeger: the initialize trace's spans (vmcp exports in batches)"
	for _ in $(seq 60); do
		spans=$(curl -s http://127.0.0.1:16686/api/traces/4bf92f3577b34da6a3ce929d0e0e4736 | grep -o '"operationName":"[^"]*"' | sort | uniq -c)
		[[ $spans == *backend.initialize* ]] && break
		sleep 0.5
	done
	echo "$spans"
	exit 0
fi

echo "Ctrl-C stops everything."
wait
