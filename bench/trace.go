package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
)

// otlpSink is an OTLP/HTTP trace receiver that keeps nothing: it reads
// each export and answers success (an empty ExportTraceServiceResponse),
// so vmcp pays for making, batching, encoding and sending its spans, and
// nothing downstream of it is measured.
type otlpSink struct {
	srv      *http.Server
	url      string
	requests atomic.Int64
	bytes    atomic.Int64
}

func startOTLPSink() (*otlpSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &otlpSink{url: "http://" + ln.Addr().String()}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		s.requests.Add(1)
		s.bytes.Add(n)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	})}
	go s.srv.Serve(ln)
	return s, nil
}

func (s *otlpSink) Close() { s.srv.Close() }

// traceScenario is issue 19's bench: S16 through a vmcp exporting every
// span (telemetry.tracing, sampling 1.0, OTLP/HTTP to a sink) against S16
// through the same kind of vmcp with tracing off, in the same run, rounds
// alternating.
func (r *runner) traceScenario(ctx context.Context) error {
	fx, err := r.echoFixture(ctx)
	if err != nil {
		return err
	}
	sink, err := startOTLPSink()
	if err != nil {
		return fmt.Errorf("OTLP sink: %w", err)
	}
	defer sink.Close()
	cfg := &vmcpConfig{maxSessions: 5000, initConcurrency: r.opts.initConcurrency, tracingEndpoint: sink.url}
	cfg.add("b0", fx.backend.url)
	v, err := r.fleet.startVMCP(ctx, r.bins.vmcp, r.tmp, r.opts.logLevel, cfg)
	if err != nil {
		return err
	}
	if _, err := findTool(ctx, v.url, fx.tool, ""); err != nil {
		return fmt.Errorf("vmcp with tracing: %w", err)
	}
	med := r.abS16(ctx, fx, abSpec{id: "TRACE", what: "traced/off", title: "TRACE: S16 with every span exported against tracing off",
		note: "The traced one exports over OTLP/HTTP (batched) to a sink in the bench's process that reads and discards each export; " +
			"each call makes an HTTP server span and a backend call span, and sends traceparent to the backend.",
		offName: "tracing off", onName: "tracing on, sampling 1.0", ratioHeader: "× tracing off", v: v})
	off, on, rt := med.base, med.test, med.ratio()
	r.rep.info("TRACE: the OTLP sink received %d exports, %d bytes", sink.requests.Load(), sink.bytes.Load())
	r.rep.check(rt >= 0.9 && off.errors == 0 && on.errors == 0, "TRACE",
		"traced %.0f calls/s = %.3f× tracing off (%.0f calls/s) at S16, errors traced %d off %d; goal ≥ 0.90× with 0 errors",
		on.rate(), rt, off.rate(), on.errors, off.errors)
	r.noteErrSamples("TRACE", labeled{"tracing off", off}, labeled{"traced", on})
	return nil
}
