package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/gateway"
	"github.com/vmcp/vmcp/internal/redistest"
)

// cluster is several vmcp replicas sharing one real redis-server, each
// serving on its own loopback port, as behind a load balancer.
type cluster struct {
	redis *redistest.Server
	reps  []*replica
}

// replica is one gateway of a cluster.
type replica struct {
	*gateway.Gateway
	URL  string // the MCP endpoint
	Logs *syncBuffer
	srv  *httptest.Server
}

// startCluster starts n replicas over the same backends and a fresh
// redis-server; everything stops when the test ends.
func startCluster(t *testing.T, n int, backends ...config.Backend) *cluster {
	t.Helper()
	c := &cluster{redis: redistest.Start(t)}
	cfg := baseConfig(backends...)
	cfg.Store.Type = config.StoreRedis
	cfg.Store.Redis.Address = c.redis.Addr
	for range n {
		c.reps = append(c.reps, startReplica(t, cfg))
	}
	// A replica hears of deletions once subscribed; the tests count on it.
	eventually(t, "replicas subscribed to deletions", func() bool {
		return redisSubscribers(t, c.redis.Addr, cfg.Store.Redis.KeyPrefix+"deleted") == n
	})
	return c
}

func startReplica(t *testing.T, cfg *config.Config) *replica {
	t.Helper()
	return startReplicaWith(t, cfg, func(h http.Handler) http.Handler { return h })
}

// startReplicaWith serves the replica's handler wrapped in wrap.
func startReplicaWith(t *testing.T, cfg *config.Config, wrap func(http.Handler) http.Handler) *replica {
	t.Helper()
	logs := &syncBuffer{}
	g, err := gateway.New(cfg, gateway.Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(wrap(g.Handler()))
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return &replica{Gateway: g, URL: srv.URL + "/mcp", Logs: logs, srv: srv}
}

// crash stops the replica serving at once, as if its process were killed:
// its listener and connections close, and it neither ends nor releases
// the sessions it holds.
func (r *replica) crash() {
	r.srv.CloseClientConnections()
	r.srv.Close()
}

// spread is an http.RoundTripper that sends each request to a random
// replica, as a load balancer without session affinity does. Requests go
// in rounds, each a random order of the replicas, so every replica serves.
type spread struct {
	hosts []string
	mu    sync.Mutex
	round []int
}

func newSpread(reps []*replica) *spread {
	s := &spread{}
	for _, r := range reps {
		u, _ := url.Parse(r.URL)
		s.hosts = append(s.hosts, u.Host)
	}
	return s
}

func (s *spread) RoundTrip(req *http.Request) (*http.Response, error) {
	s.mu.Lock()
	if len(s.round) == 0 {
		s.round = rand.Perm(len(s.hosts))
	}
	host := s.hosts[s.round[0]]
	s.round = s.round[1:]
	s.mu.Unlock()
	r := req.Clone(req.Context())
	r.URL.Host, r.Host = host, ""
	return http.DefaultTransport.RoundTrip(r)
}

// rpcResult is one JSON-RPC answer as the client saw it.
type rpcResult struct {
	Status int
	Result json.RawMessage
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
}

// rpc sends one request in session sid to url and returns the answer,
// whether it came as JSON or on an SSE stream.
func rpc(t *testing.T, url, sid, method, params string) rpcResult {
	t.Helper()
	return rpcSeeing(t, url, sid, method, params, nil)
}

// rpcSeeing is rpc that also hands an SSE answer's whole body, with the
// messages sent before the response, to seen (if not nil).
func rpcSeeing(t *testing.T, url, sid, method, params string, seen func(sse []byte)) rpcResult {
	t.Helper()
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":7,"method":%q,"params":%s}`, method, params)
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := rpcResult{Status: resp.StatusCode}
	raw, _ := io.ReadAll(resp.Body)
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		if seen != nil {
			seen(raw)
		}
		raw = lastSSEMessage(raw)
	}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s: HTTP %d, body %q: %v", method, resp.StatusCode, raw, err)
		}
	}
	return out
}

// lastSSEMessage returns the data of the last event of an SSE body that
// holds a JSON-RPC response.
func lastSSEMessage(b []byte) []byte {
	var last, data []byte
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	flush := func() {
		if len(data) > 0 && strings.Contains(string(data), `"id"`) {
			last = data
		}
		data = nil
	}
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			flush()
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")...)
		}
	}
	flush()
	return last
}

// toolCall calls tool on url in session sid, fails the test unless it
// succeeded, and returns its text and _meta.
func toolCall(t *testing.T, url, sid, tool string) (string, map[string]json.RawMessage) {
	t.Helper()
	r := rpc(t, url, sid, "tools/call", fmt.Sprintf(`{"name":%q,"arguments":{}}`, tool))
	if r.Status != http.StatusOK || r.Error != nil {
		t.Fatalf("%s: HTTP %d, error %+v", tool, r.Status, r.Error)
	}
	var res struct {
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
		Meta map[string]json.RawMessage `json:"_meta"`
	}
	if err := json.Unmarshal(r.Result, &res); err != nil || len(res.Content) == 0 {
		t.Fatalf("%s: result %s: %v", tool, r.Result, err)
	}
	return res.Content[0].Text, res.Meta
}
