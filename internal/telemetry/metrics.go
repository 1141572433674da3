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
	keepalive *prometheus.CounterVec        // backend, outcome
	refusals  map[string]prometheus.Counter // by refusalKey: label "/" value
	backends  *backendMetrics               // backends.go
}

// The refusals counted, each with the fixed values of its one label.
var refusalLabels = []struct {
	name, help, label string
	values            []string
}{
	{"vmcp_auth_failures_total", "Requests refused by incoming authentication, by reason.",
		"reason", []string{"missing_token", "invalid_token", "insufficient_scope"}},
	{"vmcp_policy_denials_total", "Calls refused by an authorization policy, by kind of item.",
		"kind", []string{"tool", "resource", "prompt"}},
	{"vmcp_rate_limited_total", "Requests refused by a rate limit, by limit.",
		"limit", []string{"call", "initialize"}},
	{"vmcp_requests_refused_total", "Requests to the MCP endpoint refused before they were read as JSON-RPC, by reason: origin (a disallowed Origin or Host), content_type, body_too_large (server.maxBodyBytes), body_timeout (server.readTimeout), body_unreadable, malformed (not a JSON-RPC message, or deeper than server.maxMessageDepth).",
		"reason", []string{"origin", "content_type", "body_too_large", "body_timeout", "body_unreadable", "malformed"}},
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
	refusals := map[string]prometheus.Counter{}
	for i, r := range refusalLabels {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: r.name, Help: r.help}, []string{r.label})
		reg.MustRegister(v)
		for _, val := range r.values {
			refusals[refusalKey(i, val)] = v.WithLabelValues(val) // exported at 0 from the start
		}
	}
	if sessions != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vmcp_active_sessions", Help: "Live client sessions held by this replica.",
		}, func() float64 { return float64(sessions()) }))
	}
	m := &Metrics{reg: reg, requests: map[string][2]prometheus.Counter{}, latency: map[string]prometheus.Observer{}, keepalive: ka, refusals: refusals, backends: newBackendMetrics(reg)}
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

func refusalKey(i int, value string) string { return refusalLabels[i].label + "/" + value }

func (m *Metrics) refused(i int, value string) {
	if c, ok := m.refusals[refusalKey(i, value)]; ok { // an unknown value is not counted rather than grow the set
		c.Inc()
	}
}

// ObserveAuthFailure counts a request refused by incoming authentication:
// reason is missing_token, invalid_token or insufficient_scope.
func (m *Metrics) ObserveAuthFailure(reason string) { m.refused(0, reason) }

// ObservePolicyDenial counts a call an authorization policy refused: kind
// is tool, resource or prompt.
func (m *Metrics) ObservePolicyDenial(kind string) { m.refused(1, kind) }

// ObserveRateLimited counts a request over a rate limit: limit is call
// (tools/call) or initialize.
func (m *Metrics) ObserveRateLimited(limit string) { m.refused(2, limit) }

// ObserveRefused counts a request to the MCP endpoint refused before it
// was read as JSON-RPC; reason is one of vmcp_requests_refused_total's.
func (m *Metrics) ObserveRefused(reason string) { m.refused(3, reason) }

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
	m.reg.MustRegister(gaugeMap{
		desc: prometheus.NewDesc("vmcp_backend_connections",
			"Open connections to each backend: sockets (streamable-http, sse) or stdio processes running (warm ones included).", []string{"backend"}, nil),
		values: counts,
	})
}

// gaugeMap is a gauge per backend read at scrape time, so no goroutine has
// to keep it up to date.
type gaugeMap struct {
	desc   *prometheus.Desc
	values func() map[string]int
}

func (g gaugeMap) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

func (g gaugeMap) Collect(ch chan<- prometheus.Metric) {
	for name, n := range g.values() {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, float64(n), name)
	}
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
