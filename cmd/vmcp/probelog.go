package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
)

// probeLog keeps the log records of vmcp validate --probe, so that it can
// show what an unreachable backend said (a stdio child that prints its
// usage and exits is otherwise only "broken pipe") without printing every
// healthy backend's chatter. Safe for concurrent use.
type probeLog struct {
	mu    *sync.Mutex
	recs  *[]slog.Record
	attrs []slog.Attr
}

func newProbeLog() probeLog {
	return probeLog{mu: new(sync.Mutex), recs: new([]slog.Record)}
}

func (probeLog) Enabled(context.Context, slog.Level) bool { return true }

func (h probeLog) Handle(_ context.Context, r slog.Record) error {
	r = r.Clone()
	r.AddAttrs(h.attrs...)
	h.mu.Lock()
	*h.recs = append(*h.recs, r)
	h.mu.Unlock()
	return nil
}

func (h probeLog) WithAttrs(as []slog.Attr) slog.Handler {
	h.attrs = append(h.attrs[:len(h.attrs):len(h.attrs)], as...)
	return h
}

// WithGroup is not used by the connectors; attributes stay ungrouped.
func (h probeLog) WithGroup(string) slog.Handler { return h }

// writeFor writes to w, as text log lines, the records whose backend
// attribute is name, in the order they were logged.
func (h probeLog) writeFor(w io.Writer, name string) {
	out := slog.NewTextHandler(w, nil)
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range *h.recs {
		match := false
		r.Attrs(func(a slog.Attr) bool {
			match = a.Key == "backend" && a.Value.String() == name
			return !match
		})
		if match {
			out.Handle(context.Background(), r)
		}
	}
}
