// Package telemetry exposes vmcp's Prometheus metrics. Labels carry only
// bounded, non-secret values: MCP method names from a fixed list and
// configured backend names; never session IDs, tokens or URLs.
package telemetry

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// knownMethods bounds the method label: anything else counts as "other",
// so hostile input cannot grow the label set.
var knownMethods = []string{
	"initialize", "ping", "tools/list", "tools/call", "resources/list", "resources/templates/list",
	"resources/read", "resources/subscribe", "resources/unsubscribe", "prompts/list", "prompts/get",
	"completion/complete", "logging/setLevel", "other",
}

// Metrics holds vmcp's collectors in a registry of its own. Safe for
// concurrent use.
type Metrics struct {
	reg       *prometheus.Registry
	requests  map[string][2]prometheus.Counter // method -> [ok, error]
	latency   map[string]prometheus.Observer
	keepalive *prometheus.CounterVec // backend, outcome
}

// New returns Metrics. sessions, if non-nil, is read at scrape time for the
// live session gauge.
func New(sessions func() int) *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vmcp_requests_total", Help: "JSON-RPC requests handled, by method and outcome.",
	}, []string{"method", "outcome"})
	lat := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "vmcp_request_duration_seconds", Help: "Time to answer a JSON-RPC request, by method.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
	}, []string{"method"})
	ka := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vmcp_keepalive_pings_total", Help: "Keepalive pings sent to backends, by configured backend name and outcome.",
	}, []string{"backend", "outcome"})
	reg.MustRegister(reqs, lat, ka)
	if sessions != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vmcp_sessions", Help: "Live client sessions held by this replica.",
		}, func() float64 { return float64(sessions()) }))
	}
	m := &Metrics{reg: reg, requests: map[string][2]prometheus.Counter{}, latency: map[string]prometheus.Observer{}, keepalive: ka}
	for _, meth := range knownMethods {
		m.requests[meth] = [2]prometheus.Counter{reqs.WithLabelValues(meth, "ok"), reqs.WithLabelValues(meth, "error")}
		m.latency[meth] = lat.WithLabelValues(meth)
	}
	return m
}

// ObserveRequest records one answered request.
func (m *Metrics) ObserveRequest(method string, d time.Duration, failed bool) {
	c, ok := m.requests[method]
	if !ok {
		method = "other"
		c = m.requests[method]
	}
	i := 0
	if failed {
		i = 1
	}
	c[i].Inc()
	m.latency[method].Observe(d.Seconds())
}

// ObserveKeepalive records one keepalive ping. backend is a configured
// backend name, so the label set stays bounded.
func (m *Metrics) ObserveKeepalive(backend string, ok bool) {
	outcome := "ok"
	if !ok {
		outcome = "error"
	}
	m.keepalive.WithLabelValues(backend, outcome).Inc()
}

// ObserveBackendConnections registers the gauge
// vmcp_backend_connections{backend}: each backend's open sockets or stdio
// processes, as counts reports them by configured backend name at scrape
// time. counts must be safe for concurrent use; call this once.
func (m *Metrics) ObserveBackendConnections(counts func() map[string]int) {
	m.reg.MustRegister(connections{
		desc: prometheus.NewDesc("vmcp_backend_connections",
			"Open connections to each backend: stdio processes running (warm ones included).", []string{"backend"}, nil),
		counts: counts,
	})
}

// connections reads the counts at scrape time, so no goroutine has to keep
// a gauge up to date.
type connections struct {
	desc   *prometheus.Desc
	counts func() map[string]int
}

func (c connections) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c connections) Collect(ch chan<- prometheus.Metric) {
	for name, n := range c.counts() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), name)
	}
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
