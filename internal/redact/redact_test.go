package redact

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/vmcp/vmcp/internal/jsonrpc"
)

func TestRedact(t *testing.T) {
	t.Parallel()
	r := New("Bearer tok-123456789", "api-key-42", "short", "", "p<a>ss&word")
	cases := []struct{ in, want string }{
		{"got Authorization: Bearer tok-123456789", "got Authorization: [REDACTED]"},
		{"token tok-123456789 leaked", "token [REDACTED] leaked"},
		{`{"message":"X-Api-Key api-key-42 is wrong"}`, `{"message":"X-Api-Key [REDACTED] is wrong"}`},
		{"a short one stays", "a short one stays"},
		{`json "p\u003ca\u003ess\u0026word"`, `json "[REDACTED]"`},
		{"raw p<a>ss&word", "raw [REDACTED]"},
		// Credentials vmcp never configured still go when they read as bearer tokens.
		{"header was bearer abcdefghijk.lmn", "header was bearer [REDACTED]"},
		{`"authorization":"Bearer\u0020xyz0123456"`, `"authorization":"Bearer\u0020[REDACTED]"`},
		{"Bearer token required", "Bearer token required"},
		{"nothing here", "nothing here"},
	}
	for _, tc := range cases {
		if got := r.Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	var none *Redactor
	if got := none.Redact("Bearer abcdefghij"); got != "Bearer [REDACTED]" {
		t.Errorf("nil Redactor: %q", got)
	}
}

func TestRedactJSON(t *testing.T) {
	t.Parallel()
	r := New(`se"cret-value`, "plain-secret")
	if got := string(r.RedactJSON(json.RawMessage(`{"a":"plain-secret"}`))); got != `{"a":"[REDACTED]"}` {
		t.Errorf("RedactJSON = %s", got)
	}
	if got := string(r.RedactJSON(json.RawMessage(`{"a":"se\"cret-value"}`))); got != `{"a":"[REDACTED]"}` {
		t.Errorf("RedactJSON of an escaped secret = %s", got)
	}
	raw := json.RawMessage(`{"k":[1,2]}`)
	if got := r.RedactJSON(raw); &got[0] != &raw[0] {
		t.Error("RedactJSON copied JSON that holds no secret")
	}
}

func TestError(t *testing.T) {
	t.Parallel()
	r := New("plain-secret")
	e := &jsonrpc.Error{Code: -32000, Message: "bad key plain-secret", Data: json.RawMessage(`{"sent":"plain-secret"}`)}
	got := r.Error(e)
	if got.Code != e.Code || got.Message != "bad key [REDACTED]" || string(got.Data) != `{"sent":"[REDACTED]"}` {
		t.Errorf("Error = %+v", got)
	}
	if strings.Contains(e.Message, "[REDACTED]") {
		t.Error("Error changed the backend's error in place")
	}
	clean := &jsonrpc.Error{Code: -32601, Message: "method not found"}
	if r.Error(clean) != clean {
		t.Error("Error copied an error that holds no secret")
	}
}

func TestHandler(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	r := New("sekrit-value-1")
	log := slog.New(r.Handler(slog.NewJSONHandler(&buf, nil))).With("ctx", "with sekrit-value-1")
	log.WithGroup("g").Info("msg sekrit-value-1",
		"err", fmt.Errorf("wrapped: %w", errors.New("sekrit-value-1")),
		"str", "Bearer abcdefghijkl",
		"num", 42,
		slog.Group("inner", "x", "sekrit-value-1"),
		"any", struct{ S string }{"sekrit-value-1"},
		"clean", []int{1, 2},
	)
	out := buf.String()
	if strings.Contains(out, "sekrit") || strings.Contains(out, "abcdefghijkl") {
		t.Errorf("secret in the log: %s", out)
	}
	for _, want := range []string{`"num":42`, `"clean":[1,2]`, `"err":"wrapped: [REDACTED]"`, `"ctx":"with [REDACTED]"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s: %s", want, out)
		}
	}
}

func BenchmarkRedact(b *testing.B) {
	r := New("Bearer tok-123456789", "api-key-42", "another-secret-value")
	msg := `backend "web": tools/call: unexpected HTTP status 502 Bad Gateway from upstream`
	b.ReportAllocs()
	for b.Loop() {
		r.Redact(msg)
	}
}

// TestAdd: a value added by a config reload is hidden from then on, and
// the earlier ones still are.
func TestAdd(t *testing.T) {
	t.Parallel()
	r := New("old-secret-1")
	r.Add("new-secret-2", "old-secret-1")
	if got := r.Redact("a old-secret-1 b new-secret-2"); got != "a "+Mask+" b "+Mask {
		t.Errorf("Redact = %q", got)
	}
}
