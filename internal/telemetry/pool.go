package telemetry

import "github.com/prometheus/client_golang/prometheus"

// WarmPool is what the warm session pool reports at scrape time: the
// sessions it holds and, since it started, what each Acquire got.
type WarmPool struct {
	Sessions, Busy, Listened, Identities int
	// Acquires by outcome: hit, shared, miss, evicted, refused, failed
	// (the fixed set warmOutcomes lists).
	Hit, Shared, Miss, Evicted, Refused, Failed uint64
	Reaped                                      uint64 // sessions closed for being idle or too old
}

// warmOutcomes bounds vmcp_warm_acquire_total's outcome label.
var warmOutcomes = []labelled[WarmPool]{
	{"hit", func(w WarmPool) uint64 { return w.Hit }},
	{"shared", func(w WarmPool) uint64 { return w.Shared }},
	{"miss", func(w WarmPool) uint64 { return w.Miss }},
	{"evicted", func(w WarmPool) uint64 { return w.Evicted }},
	{"refused", func(w WarmPool) uint64 { return w.Refused }},
	{"failed", func(w WarmPool) uint64 { return w.Failed }},
}

// ObserveWarmPool registers the warm pool's metrics, read from stats at
// scrape time: the gauges vmcp_warm_sessions, vmcp_warm_sessions_busy,
// vmcp_warm_sessions_listened and vmcp_warm_identities, and the counters vmcp_warm_acquire_total{outcome}
// and vmcp_warm_reaped_total. No label carries an identity. stats must be
// safe for concurrent use; call this once.
func (m *Metrics) ObserveWarmPool(stats func() WarmPool) {
	m.reg.MustRegister(warmCollector{
		sessions:   prometheus.NewDesc("vmcp_warm_sessions", "Warm backend sessions pooled for stateless (2026-07-28) requests.", nil, nil),
		busy:       prometheus.NewDesc("vmcp_warm_sessions_busy", "Warm sessions serving a request now.", nil, nil),
		listened:   prometheus.NewDesc("vmcp_warm_sessions_listened", "Warm sessions a subscriptions/listen stream holds (busy only while they also serve a request).", nil, nil),
		identities: prometheus.NewDesc("vmcp_warm_identities", "Caller identities with warm sessions.", nil, nil),
		acquires:   prometheus.NewDesc("vmcp_warm_acquire_total", "Warm session acquisitions by outcome: hit (an idle session), shared (a busy one, at the identity's bound), miss (a new one), evicted (a new one in place of another identity's idle one), refused (pool exhausted: 503), failed (build failed).", []string{"outcome"}, nil),
		reaped:     prometheus.NewDesc("vmcp_warm_reaped_total", "Warm sessions closed for being idle or too old.", nil, nil),
		stats:      stats,
	})
}

// warmCollector reads the pool's own counts at scrape time, so that
// /metrics and /status agree and no goroutine keeps gauges up to date.
type warmCollector struct {
	sessions, busy, listened, identities, acquires, reaped *prometheus.Desc
	stats                                                  func() WarmPool
}

func (c warmCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.sessions, c.busy, c.listened, c.identities, c.acquires, c.reaped} {
		ch <- d
	}
}

func (c warmCollector) Collect(ch chan<- prometheus.Metric) {
	w := c.stats()
	ch <- prometheus.MustNewConstMetric(c.sessions, prometheus.GaugeValue, float64(w.Sessions))
	ch <- prometheus.MustNewConstMetric(c.busy, prometheus.GaugeValue, float64(w.Busy))
	ch <- prometheus.MustNewConstMetric(c.listened, prometheus.GaugeValue, float64(w.Listened))
	ch <- prometheus.MustNewConstMetric(c.identities, prometheus.GaugeValue, float64(w.Identities))
	for _, o := range warmOutcomes {
		ch <- prometheus.MustNewConstMetric(c.acquires, prometheus.CounterValue, float64(o.value(w)), o.name)
	}
	ch <- prometheus.MustNewConstMetric(c.reaped, prometheus.CounterValue, float64(w.Reaped))
}
