package recovery_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/vmcp/vmcp/internal/recovery"
)

func TestRecoverLogsAndFailsOnlyTheOwner(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	var got error
	var wg sync.WaitGroup
	wg.Go(func() {
		defer recovery.Recover(log, func(err error) { got = err }, "backend", "files")
		panic("backend bug")
	})
	wg.Wait()
	if !errors.Is(got, recovery.ErrPanic) {
		t.Fatalf("fail got %v, want ErrPanic", got)
	}
	out := buf.String()
	for _, want := range []string{"level=ERROR", "backend=files", "panic=\"backend bug\"", "recovery_test.go"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

func TestRecoverWithoutPanicDoesNothing(t *testing.T) {
	t.Parallel()
	called := false
	func() {
		defer recovery.Recover(nil, func(error) { called = true })
	}()
	if called {
		t.Fatal("fail called without a panic")
	}
}
