#!/usr/bin/env bash
# Scale vmcp out on loopback: one redis-server, three vmcp replicas sharing
# their sessions through it, and one stateful example backend. Put any HTTP
# load balancer in front of the replicas (see README.md).
#
#   examples/scale-out/run.sh          # start everything; Ctrl-C stops it all
#   examples/scale-out/run.sh --demo   # start, walk one session across the replicas, stop
#
# Ports (override with the environment): REDIS_PORT=6390, BACKEND_PORT=8091,
# VMCP_PORTS="4483 4484 4485". Needs Go, redis-server and curl.
set -euo pipefail

REDIS_PORT=${REDIS_PORT:-6390}
BACKEND_PORT=${BACKEND_PORT:-8091}
VMCP_PORTS=${VMCP_PORTS:-"4483 4484 4485"}
demo=false
[[ ${1:-} == --demo ]] && demo=true

cd "$(dirname "$0")/../.."
command -v redis-server >/dev/null || { echo "redis-server not found (apt-get install redis-server)" >&2; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building vmcp and the example server..."
go build -o "$work/" ./cmd/vmcp ./cmd/vmcp-example-server

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --logfile "$work/redis.log" &
pids+=($!)
"$work/vmcp-example-server" -transport http -listen "127.0.0.1:$BACKEND_PORT" -name counter >/dev/null 2>"$work/backend.log" &
pids+=($!)

cat >"$work/vmcp.yaml" <<YAML
backends:
  - name: counter
    transport: streamable-http
    url: http://127.0.0.1:$BACKEND_PORT/mcp
store:
  type: redis
  redis: {address: "127.0.0.1:$REDIS_PORT", keyPrefix: "vmcp:"}
YAML

for port in $VMCP_PORTS; do
	"$work/vmcp" serve --config "$work/vmcp.yaml" --listen "127.0.0.1:$port" 2>"$work/vmcp-$port.log" &
	pids+=($!)
done

for port in $VMCP_PORTS; do
	for _ in $(seq 100); do
		curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
		sleep 0.1
	done
	curl -fs "http://127.0.0.1:$port/readyz" >/dev/null || { echo "replica on port $port did not become ready:" >&2; cat "$work/vmcp-$port.log" >&2; exit 1; }
done

echo "redis-server on 127.0.0.1:$REDIS_PORT, example backend on 127.0.0.1:$BACKEND_PORT"
for port in $VMCP_PORTS; do echo "vmcp replica:  http://127.0.0.1:$port/mcp   (log $work/vmcp-$port.log)"; done

# post PORT SESSION BODY: one JSON-RPC message; prints the JSON answer,
# whether it came as JSON or as an SSE event.
post() {
	curl -s "http://127.0.0.1:$1/mcp" -H 'Content-Type: application/json' \
		-H 'Accept: application/json, text/event-stream' -H "Mcp-Session-Id: $2" -d "$3" |
		sed -n 's/^data: //; /^{/p'
}

if $demo; then
	ports=($VMCP_PORTS)
	sid=$(curl -si "http://127.0.0.1:${ports[0]}/mcp" -H 'Content-Type: application/json' \
		-H 'Accept: application/json, text/event-stream' \
		-d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}' |
		tr -d '\r' | sed -n 's/^[Mm]cp-[Ss]ession-[Ii]d: //p')
	[[ -n $sid ]] || { echo "initialize failed" >&2; exit 1; }
	echo "session initialized on port ${ports[0]}"
	post "${ports[0]}" "$sid" '{"jsonrpc":"2.0","method":"notifications/initialized"}' >/dev/null
	for i in 1 2 3 4 5 6; do
		port=${ports[$(((i - 1) % ${#ports[@]}))]}
		echo "call $i on port $port: $(post "$port" "$sid" '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"counter_counter","arguments":{}}}')"
	done
	curl -s -o /dev/null -w "DELETE on port ${ports[1]}: HTTP %{http_code}\n" -X DELETE "http://127.0.0.1:${ports[1]}/mcp" -H "Mcp-Session-Id: $sid"
	echo "tools/list on port ${ports[2]} after DELETE: HTTP $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${ports[2]}/mcp" \
		-H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' -H "Mcp-Session-Id: $sid" \
		-d '{"jsonrpc":"2.0","id":3,"method":"tools/list"}')"
	exit 0
fi

echo "Ctrl-C stops everything."
wait
