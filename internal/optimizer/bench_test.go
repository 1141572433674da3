package optimizer

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/session"
	"github.com/vmcp/vmcp/internal/toolsearch/toolsearchtest"
)

// listOnly is the session side of the benchmark: a catalog to list. The
// benchmark measures find_tool itself, so nothing is called through it.
type listOnly []json.RawMessage

func (l listOnly) List(context.Context, session.List) ([]json.RawMessage, error) { return l, nil }
func (listOnly) Call(context.Context, string, json.RawMessage) (json.RawMessage, error) {
	return nil, fmt.Errorf("not in the benchmark")
}

// benchQueries are plain-language queries of the kind find_tool serves.
var benchQueries = []string{
	"open a new issue in the github repo", "post a message in a slack channel",
	"refund a stripe payment", "list objects in an s3 bucket", "delete a kubernetes secret",
	"schedule a meeting on google calendar", "search my gmail threads", "who is on call in pagerduty",
	"export all invoices as csv", "count hubspot contacts", "update", "read the contents of a file",
}

// BenchmarkFindTool measures one find_tool call (arguments in, result
// JSON out, limit 5) over a catalog of 1,000 and 10,000 tools, its index
// already built, and reports its p50 and p99.
func BenchmarkFindTool(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("tools=%d", n), func(b *testing.B) {
			tools := toolsearchtest.Catalog(n)
			o := New(Options{})
			p := o.Wrap(listOnly(tools), func() []json.RawMessage { return tools }).(*ops)
			args := make([]json.RawMessage, len(benchQueries))
			for i, q := range benchQueries {
				args[i], _ = json.Marshal(map[string]any{"query": q, "limit": 5})
			}
			ctx := context.Background()
			if _, err := p.findTool(ctx, args[0]); err != nil { // builds the index
				b.Fatal(err)
			}
			var durs []time.Duration
			b.ReportAllocs()
			cpu0 := cpuTime()
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				if _, err := p.findTool(ctx, args[i%len(args)]); err != nil {
					b.Fatal(err)
				}
				durs = append(durs, time.Since(start))
			}
			cpu := cpuTime() - cpu0
			slices.Sort(durs)
			b.ReportMetric(float64(durs[len(durs)/2].Nanoseconds())/1e3, "p50-µs")
			b.ReportMetric(float64(durs[len(durs)*99/100].Nanoseconds())/1e3, "p99-µs")
			b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(len(durs)), "cpu-µs/op")
		})
	}
}

// cpuTime is the CPU time this process has used (user and system, every
// thread, the collector's too). On a shared machine it says what an
// operation costs better than the wall clock, which counts the time other
// processes had the CPU.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIndexBuild measures building one catalog's index (parsing its
// tools and BM25), and reports the heap the index holds.
func BenchmarkIndexBuild(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("tools=%d", n), func(b *testing.B) {
			tools := toolsearchtest.Catalog(n)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			idx := buildIndex(tools, BM25)
			runtime.GC()
			runtime.ReadMemStats(&after)
			runtime.KeepAlive(idx)
			b.ReportAllocs()
			cpu0, n := cpuTime(), 0
			for b.Loop() {
				buildIndex(tools, BM25)
				n++
			}
			b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(n), "cpu-ms/op")
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "index-MiB")
		})
	}
}
