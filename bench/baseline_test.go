package main

import (
	"math"
	"os"
	"strings"
	"testing"
)

// TestBaselineComparison renders the comparison with the old stack for a
// run that measured some figures: it must come first in the report, show
// the old stack's figures from the checked-in file beside this run's, and
// say which scenarios did not run.
func TestBaselineComparison(t *testing.T) {
	t.Parallel()
	r := &runner{rep: &report{}}
	r.rep.table("S table", []string{"x"}, [][]string{{"1"}})
	r.figure("S1", 0.9)
	r.figure("CPU vmcp", 100)
	r.figure("CPU HAProxy", 80)
	r.figure("CPU vmcp ÷ HAProxy", 1.25)
	r.figure("SCALE peak RSS", 99.94)
	r.compareWithBaseline()
	if len(r.rep.notes) > 0 {
		t.Fatalf("problems: %q", r.rep.notes)
	}
	body := r.rep.body()
	if !strings.HasPrefix(body, "### "+titleBaseline+"\n") {
		t.Errorf("the comparison is not the first table:\n%s", body)
	}
	for _, want := range []string{
		"| figure | old stack, 2026-11-24 16:01 UTC | this run | goal |",
		"| S1: vmcp calls/s ÷ direct | 0.82× | 0.90× | ≥ 0.80× |",
		"| S64: vmcp calls/s ÷ direct | 0.85× | not run | ≥ 0.80× |",
		"| S16: HAProxy calls/s ÷ direct (reference) | 0.92× | not run | – |",
		"| CPU: vmcp CPU per proxied call | 141 µs | 100 µs | – |",
		"| CPU: vmcp's CPU per call ÷ HAProxy's | 1.23× | 1.25× | ≤ 1.50× |",
		"| SCALE: vmcp peak RSS (VmHWM) | 120.7 MiB | 99.9 MiB | – |",
		"bench/baseline-custom-stack.md is its whole report",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("report lacks %q:\n%s", want, body)
		}
	}
	// Run again (as a second call would): still one comparison, still first.
	r.compareWithBaseline()
	if n := strings.Count(r.rep.body(), "### "+titleBaseline); n != 1 {
		t.Errorf("%d comparison tables, want 1", n)
	}
}

// TestBaselineFile checks the checked-in baseline against the rows the
// report compares and against the old run's whole report it was taken
// from.
func TestBaselineFile(t *testing.T) {
	t.Parallel()
	b, err := loadBaseline()
	if err != nil {
		t.Fatal(err)
	}
	if b.Run == "" || b.Stack == "" || b.Machine == "" {
		t.Errorf("baseline lacks run, stack or machine: %+v", b)
	}
	whole, err := os.ReadFile("baseline-custom-stack.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(whole), "- Date: "+b.Run+"\n") {
		t.Errorf("baseline-custom-stack.md is not the run of %s", b.Run)
	}
	for _, f := range comparedFigures {
		v := b.Figures[f.key]
		if f.key == "CPU vmcp ÷ HAProxy" { // derived, not in the old report
			if want := b.Figures["CPU vmcp"] / b.Figures["CPU HAProxy"]; math.Abs(v-want) > 0.005 {
				t.Errorf("%s = %v, want %.3f", f.key, v, want)
			}
			continue
		}
		if s := fmtFigure(v, f.unit); !strings.Contains(string(whole), s) {
			t.Errorf("%s: %s is nowhere in baseline-custom-stack.md", f.key, s)
		}
	}
}
