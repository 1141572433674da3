package telemetry

import "github.com/prometheus/client_golang/prometheus"

// MRTR is what the multi round-trip calls of modern (2026-07-28) clients
// report at scrape time: the calls waiting for a client's retry now and,
// since start, the outcome of each round and of each refused retry.
type MRTR struct {
	Waiting int
	// Rounds: input_required (answered InputRequiredResult; the call
	// waits), resumed (a retry answered a waiting call), expired (no
	// retry within modern.inputTimeout), refused (too many calls waiting).
	InputRequired, Resumed, Expired, Refused uint64
	// Retries refused: invalid_state (failed verification: tampered,
	// another caller's or another request's), expired_state, not_waiting
	// (the call it continues is over).
	InvalidState, ExpiredState, NotWaiting uint64
}

// labelled is one value of a counter's label, read from a snapshot S
// (WarmPool, MRTR).
type labelled[S any] struct {
	name  string
	value func(S) uint64
}

// mrtrRounds and mrtrRejected bound the outcome and reason labels.
var (
	mrtrRounds = []labelled[MRTR]{
		{"input_required", func(m MRTR) uint64 { return m.InputRequired }},
		{"resumed", func(m MRTR) uint64 { return m.Resumed }},
		{"expired", func(m MRTR) uint64 { return m.Expired }},
		{"refused", func(m MRTR) uint64 { return m.Refused }},
	}
	mrtrRejected = []labelled[MRTR]{
		{"invalid_state", func(m MRTR) uint64 { return m.InvalidState }},
		{"expired_state", func(m MRTR) uint64 { return m.ExpiredState }},
		{"not_waiting", func(m MRTR) uint64 { return m.NotWaiting }},
	}
)

// ObserveMRTR registers the metrics of multi round-trip calls, read from
// stats at scrape time (so /metrics and /status agree): the gauge
// vmcp_mrtr_waiting_calls and the counters vmcp_mrtr_rounds_total{outcome}
// and vmcp_mrtr_retries_rejected_total{reason}. stats must be safe for
// concurrent use; call this once.
func (m *Metrics) ObserveMRTR(stats func() MRTR) {
	m.reg.MustRegister(mrtrCollector{
		waiting: prometheus.NewDesc("vmcp_mrtr_waiting_calls", "Calls of modern (2026-07-28) clients waiting for the retry that brings the input a backend asked for.", nil, nil),
		rounds: prometheus.NewDesc("vmcp_mrtr_rounds_total", "Rounds of multi round-trip calls by outcome: input_required (the client was asked for input; the call waits), resumed (a retry answered a waiting call), expired (no retry within modern.inputTimeout), refused (modern.maxWaitingCalls reached: 503).",
			[]string{"outcome"}, nil),
		rejected: prometheus.NewDesc("vmcp_mrtr_retries_rejected_total", "Retries refused with -32602, by reason: invalid_state (requestState failed verification: tampered, another caller's or another request's), expired_state, not_waiting (the call it continues is over).",
			[]string{"reason"}, nil),
		stats: stats,
	})
}

type mrtrCollector struct {
	waiting, rounds, rejected *prometheus.Desc
	stats                     func() MRTR
}

func (c mrtrCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.waiting
	ch <- c.rounds
	ch <- c.rejected
}

func (c mrtrCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(c.waiting, prometheus.GaugeValue, float64(s.Waiting))
	for _, l := range []struct {
		desc   *prometheus.Desc
		values []labelled[MRTR]
	}{{c.rounds, mrtrRounds}, {c.rejected, mrtrRejected}} {
		for _, v := range l.values {
			ch <- prometheus.MustNewConstMetric(l.desc, prometheus.CounterValue, float64(v.value(s)), v.name)
		}
	}
}
