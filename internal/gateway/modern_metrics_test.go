package gateway_test

import (
	"strings"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/gateway"
)

// mrtrRound sends ask_confirm (with state and answer, if given) and
// returns the requestState of an InputRequiredResult, "" for anything else.
func mrtrRound(t *testing.T, url, state string, answer map[string]any) (string, map[string]any) {
	t.Helper()
	params := map[string]any{"name": "ask_confirm", "arguments": map[string]any{}}
	if state != "" {
		params["requestState"] = state
		params["inputResponses"] = answer
	}
	_, msg := modernPost(t, url, "tools/call", params, nil)
	res, _ := msg["result"].(map[string]any)
	if res["resultType"] != "input_required" {
		return "", msg
	}
	st, _ := res["requestState"].(string)
	reqs, _ := res["inputRequests"].(map[string]any)
	for k := range reqs {
		answer[k] = map[string]any{"action": "accept", "content": map[string]any{"name": "Ada"}}
	}
	return st, msg
}

// metricsHave fails the test for each line /metrics lacks.
func metricsHave(t *testing.T, gw *running, want ...string) {
	t.Helper()
	m := getBody(t, gw.Base+"/metrics")
	for _, w := range want {
		if !strings.Contains(m, w+"\n") {
			t.Errorf("/metrics lacks %q", w)
		}
	}
}

// The calls waiting for a modern client's input are a gauge, and each
// round's outcome and each refused retry a counter: a real MRTR round
// trip through a legacy backend that elicits, a tampered state, a retry
// of a call that is over; then, with a short inputTimeout, a call whose
// client never retried and the retry that comes too late.
func TestModernMRTRMetrics(t *testing.T) {
	t.Parallel()
	backend := config.Backend{Name: "ask", Transport: config.TransportStreamableHTTP, URL: askingBackend(t)}
	gw := startGateway(t, baseConfig(backend), gateway.Options{})
	metricsHave(t, gw, "vmcp_mrtr_waiting_calls 0", `vmcp_mrtr_rounds_total{outcome="input_required"} 0`)

	answer := map[string]any{}
	state, msg := mrtrRound(t, gw.URL, "", answer)
	if state == "" {
		t.Fatalf("first round: %v, want an InputRequiredResult", msg)
	}
	metricsHave(t, gw, "vmcp_mrtr_waiting_calls 1", `vmcp_mrtr_rounds_total{outcome="input_required"} 1`)
	if _, msg := mrtrRound(t, gw.URL, state[:len(state)-2]+"xx", answer); errCode(msg) != -32602 {
		t.Fatalf("tampered state: %v, want -32602", msg)
	}
	if next, msg := mrtrRound(t, gw.URL, state, answer); next != "" || msg["result"] == nil {
		t.Fatalf("retry: %v, want the completed call", msg)
	}
	if _, msg := mrtrRound(t, gw.URL, state, answer); errCode(msg) != -32602 {
		t.Fatalf("second retry of a finished call: %v, want -32602", msg)
	}
	metricsHave(t, gw,
		"vmcp_mrtr_waiting_calls 0",
		`vmcp_mrtr_rounds_total{outcome="input_required"} 1`,
		`vmcp_mrtr_rounds_total{outcome="resumed"} 1`,
		`vmcp_mrtr_rounds_total{outcome="expired"} 0`,
		`vmcp_mrtr_retries_rejected_total{reason="invalid_state"} 1`,
		`vmcp_mrtr_retries_rejected_total{reason="not_waiting"} 1`,
		`vmcp_mrtr_retries_rejected_total{reason="expired_state"} 0`,
	)

	// A client that never comes back: the call is given up, and its
	// state refused once expired.
	cfg := baseConfig(backend)
	cfg.Modern.InputTimeout = config.Duration(200 * time.Millisecond)
	short := startGateway(t, cfg, gateway.Options{})
	state, msg = mrtrRound(t, short.URL, "", map[string]any{})
	if state == "" {
		t.Fatalf("first round: %v, want an InputRequiredResult", msg)
	}
	eventually(t, "the unanswered call to expire", func() bool { return short.WaitingCalls() == 0 })
	eventually(t, "the requestState to expire", func() bool {
		_, msg := mrtrRound(t, short.URL, state, answer)
		e, _ := msg["error"].(map[string]any)
		text, _ := e["message"].(string)
		return strings.Contains(text, "expired")
	})
	metricsHave(t, short,
		"vmcp_mrtr_waiting_calls 0",
		`vmcp_mrtr_rounds_total{outcome="expired"} 1`,
		`vmcp_mrtr_retries_rejected_total{reason="expired_state"} 1`,
	)
}
