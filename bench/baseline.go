package main

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"time"
)

// The old stack's last full run, which every run's report shows beside its
// own figures. baseline-custom-stack.md holds that run's whole RESULTS.md;
// baseline-custom-stack.json the figures compared here, taken from it.
//
//go:embed baseline-custom-stack.json
var baselineJSON []byte

// baseline is the decoded baseline-custom-stack.json.
type baseline struct {
	Stack   string             `json:"stack"`   // what that build served HTTP with
	Run     string             `json:"run"`     // when, as its RESULTS.md gives it
	Machine string             `json:"machine"` // where, as its RESULTS.md gives it
	Figures map[string]float64 `json:"figures"` // by comparedFigure.key
}

// comparedFigure is one row of the comparison with the baseline: a figure
// the scenarios record under key, in unit.
type comparedFigure struct {
	key, label string
	unit       string // unitRatio, unitMicros or unitMiB
	goal       string // "" for a reference figure
}

const (
	unitRatio  = "×"
	unitMicros = "µs"
	unitMiB    = "MiB"
)

// comparedFigures are the rows, in order. The throughput and CPU goals are
// the net/http stack's; the SCALE one is the bench's own.
var comparedFigures = []comparedFigure{
	{"S1", "S1: vmcp calls/s ÷ direct", unitRatio, "≥ 0.80×"},
	{"S16", "S16: vmcp calls/s ÷ direct", unitRatio, "≥ 0.80×"},
	{"S64", "S64: vmcp calls/s ÷ direct", unitRatio, "≥ 0.80×"},
	{"S1 HAProxy", "S1: HAProxy calls/s ÷ direct (reference)", unitRatio, ""},
	{"S16 HAProxy", "S16: HAProxy calls/s ÷ direct (reference)", unitRatio, ""},
	{"S64 HAProxy", "S64: HAProxy calls/s ÷ direct (reference)", unitRatio, ""},
	{"CPU vmcp", "CPU: vmcp CPU per proxied call", unitMicros, ""},
	{"CPU HAProxy", "CPU: HAProxy CPU per proxied call", unitMicros, ""},
	{"CPU vmcp ÷ HAProxy", "CPU: vmcp's CPU per call ÷ HAProxy's", unitRatio, "≤ 1.50×"},
	{"CPU null proxy", "CPU: null proxy CPU per proxied call", unitMicros, ""},
	{"SCALE peak RSS", "SCALE: vmcp peak RSS (VmHWM)", unitMiB, ""},
	{"SCALE RSS after", "SCALE: vmcp RSS after the last DELETE ÷ baseline", unitRatio, "≤ 1.10×"},
}

const titleBaseline = "Beside the old stack"

// loadBaseline decodes the embedded baseline and checks that it has a
// figure for every compared row and no other.
func loadBaseline() (baseline, error) {
	var b baseline
	if err := json.Unmarshal(baselineJSON, &b); err != nil {
		return b, fmt.Errorf("baseline-custom-stack.json: %w", err)
	}
	known := map[string]bool{}
	for _, f := range comparedFigures {
		known[f.key] = true
		if _, ok := b.Figures[f.key]; !ok {
			return b, fmt.Errorf("baseline-custom-stack.json: no figure %q", f.key)
		}
	}
	for k := range b.Figures {
		if !known[k] {
			return b, fmt.Errorf("baseline-custom-stack.json: unknown figure %q", k)
		}
	}
	return b, nil
}

// figure records one of this run's figures for the comparison with the
// baseline; key is a comparedFigure's.
func (r *runner) figure(key string, v float64) {
	if r.figures == nil {
		r.figures = map[string]float64{}
	}
	r.figures[key] = v
}

// compareWithBaseline puts the table of this run's figures beside the
// baseline's at the top of the report. Rows whose scenario did not run
// say so.
func (r *runner) compareWithBaseline() {
	b, err := loadBaseline()
	if err != nil {
		r.rep.note("%v", err)
		return
	}
	var rows [][]string
	for _, f := range comparedFigures {
		now := "not run"
		if v, ok := r.figures[f.key]; ok {
			now = fmtFigure(v, f.unit)
		}
		goal := f.goal
		if goal == "" {
			goal = "–"
		}
		rows = append(rows, []string{f.label, fmtFigure(b.Figures[f.key], f.unit), now, goal})
	}
	r.rep.tableFirst(titleBaseline, []string{"figure", "old stack, " + b.Run, "this run", "goal"}, rows,
		fmt.Sprintf("The old stack is %s, measured on %s; bench/baseline-custom-stack.md is its whole report. "+
			"Ratios are taken within each run, so they compare across runs better than absolute figures do. "+
			"The rows come from the tables below: each S row's median round, the CPU scenario's median rounds, SCALE's first burst.",
			b.Stack, b.Machine))
}

func fmtFigure(v float64, unit string) string {
	switch unit {
	case unitMicros:
		return fmtMicros(time.Duration(v * float64(time.Microsecond)))
	case unitMiB:
		return fmt.Sprintf("%.1f MiB", v)
	}
	return fmtRatio(v)
}

// micros is d in microseconds, as figures in unitMicros are recorded.
func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
