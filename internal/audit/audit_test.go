package audit_test

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/vmcp/vmcp/internal/audit"
)

// Close stops the writer goroutine: no test leaves one behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// counter is the Observer: it counts what the Log lost.
type counter struct{ dropped, failed atomic.Int64 }

func (c *counter) AuditDropped()          { c.dropped.Add(1) }
func (c *counter) AuditWriteFailed(n int) { c.failed.Add(int64(n)) }

// stuck accepts its first write (audit_started) and then blocks every
// write until released: a disk that stopped answering.
type stuck struct {
	mu      sync.Mutex
	writes  int
	release chan struct{}
	got     strings.Builder
}

func (s *stuck) Write(p []byte) (int, error) {
	s.mu.Lock()
	s.writes++
	first := s.writes == 1
	s.mu.Unlock()
	if !first {
		<-s.release
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got.Write(p)
	return len(p), nil
}

// failing fails every write after the first: a full disk.
type failing struct{ n int }

func (f *failing) Write(p []byte) (int, error) {
	if f.n++; f.n > 1 {
		return 0, errors.New("no space left on device")
	}
	return len(p), nil
}

func TestRecordNeverBlocksAndCountsWhatItDrops(t *testing.T) {
	out := &stuck{release: make(chan struct{})}
	c := &counter{}
	l, err := audit.Open(audit.Options{Path: "-", Stdout: out, Buffer: 2, Observer: c})
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	for range n {
		l.Record(audit.Event{Event: "tool_call"}) // returns although nothing is written
	}
	close(out.release)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	written := strings.Count(out.got.String(), `"tool_call"`)
	if written == 0 || int64(written)+c.dropped.Load() != n {
		t.Errorf("written %d + dropped %d, want %d in all", written, c.dropped.Load(), n)
	}
	if c.dropped.Load() == 0 {
		t.Error("nothing dropped behind a stuck writer")
	}
}

func TestWriteErrorsAreCounted(t *testing.T) {
	c := &counter{}
	l, err := audit.Open(audit.Options{Path: "-", Stdout: &failing{}, Observer: c})
	if err != nil {
		t.Fatal(err)
	}
	l.Record(audit.Event{Event: "tool_call"})
	l.Record(audit.Event{Event: "tool_call"})
	l.Close()
	if c.failed.Load()+c.dropped.Load() != 2 || c.failed.Load() == 0 {
		t.Errorf("failed %d, dropped %d; want the 2 events counted as failed", c.failed.Load(), c.dropped.Load())
	}
}

func TestFullDiskAtStartIsAnError(t *testing.T) {
	_, err := audit.Open(audit.Options{Path: "-", Stdout: writerFunc(func([]byte) (int, error) { return 0, errors.New("no space left on device") })})
	if err == nil || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("Open = %v", err)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestSessionNameIsKeyedAndStable(t *testing.T) {
	open := func(key string) *audit.Log {
		l, err := audit.Open(audit.Options{Path: "-", Stdout: &strings.Builder{}, Key: []byte(key)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	a, b, other := open("k1"), open("k1"), open("k2")
	const id = "session-id-secret"
	if a.SessionName(id) != b.SessionName(id) || a.SessionName(id) == other.SessionName(id) || strings.Contains(id, a.SessionName(id)) {
		t.Errorf("names %q %q %q", a.SessionName(id), b.SessionName(id), other.SessionName(id))
	}
}
