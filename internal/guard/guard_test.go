package guard

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/ratelimit"
)

func TestDecodeArguments(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		raw     string
		wantErr error // nil: decodes
		bad     bool  // some other error
	}{
		{raw: ``},
		{raw: `null`},
		{raw: `{"path":"/tmp/x","n":1,"opts":{"a":[{"b":1},{"b":2}]}}`},
		{raw: `{"path":"/tmp/x","PATH":"/etc"}`, wantErr: errDuplicateKey},
		{raw: `{"path":"/tmp/x","path":"/etc"}`, wantErr: errDuplicateKey},
		{raw: `{"opts":{"Mode":"r","mode":"w"}}`, wantErr: errDuplicateKey},
		{raw: `{"list":[{"k":1,"K":2}]}`, wantErr: errDuplicateKey},
		{raw: `[1,2]`, bad: true},
		{raw: `{"a":`, bad: true},
	} {
		_, err := decodeArguments([]byte(tc.raw))
		switch {
		case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
			t.Errorf("%s: err = %v, want %v", tc.raw, err, tc.wantErr)
		case tc.bad && err == nil:
			t.Errorf("%s: decoded", tc.raw)
		case tc.wantErr == nil && !tc.bad && err != nil:
			t.Errorf("%s: %v", tc.raw, err)
		}
	}
}

// TestLimitsFailOpen: when the buckets' Redis is unreachable, calls and
// initializes go through, and the log says so once, not per call.
func TestLimitsFailOpen(t *testing.T) {
	t.Parallel()
	c := redis.NewClient(&redis.Options{Addr: strings.TrimSuffix(strings.TrimPrefix(fixture.DeadURL(t), "http://"), "/mcp"), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	logs := &fixture.Buffer{}
	l := NewLimits(ratelimit.NewRedis(c, "x:"), &ratelimit.Limit{Rate: 1.0 / 3600, Burst: 1}, nil, slog.New(slog.NewTextHandler(logs, nil)), nil)
	for range 3 {
		if _, ok := l.AllowInitialize(context.Background(), "ip:127.0.0.1"); !ok {
			t.Fatal("refused while its store is down")
		}
	}
	if n := strings.Count(logs.String(), "rate limits not applied"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, logs)
	}
}
