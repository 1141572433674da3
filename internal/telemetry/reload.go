package telemetry

import "github.com/prometheus/client_golang/prometheus"

// The outcomes of a config reload.
const (
	ReloadOK      = "ok"      // applied
	ReloadInvalid = "invalid" // the file did not load or validate; nothing changed
	ReloadFailed  = "failed"  // valid, but what it describes could not be built; nothing changed
)

// ConfigReloads counts config reloads: vmcp_config_reloads_total{outcome}.
// Safe for concurrent use.
type ConfigReloads struct{ c *prometheus.CounterVec }

// NewConfigReloads registers vmcp_config_reloads_total; call it once.
func (m *Metrics) NewConfigReloads() *ConfigReloads {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vmcp_config_reloads_total",
		Help: "Config reloads (SIGHUP or a change to the file), by outcome: ok, invalid, failed.",
	}, []string{"outcome"})
	for _, o := range []string{ReloadOK, ReloadInvalid, ReloadFailed} {
		c.WithLabelValues(o) // present at 0, so an alert's increase() sees the first failure
	}
	m.reg.MustRegister(c)
	return &ConfigReloads{c: c}
}

// Observe counts one reload with its outcome.
func (r *ConfigReloads) Observe(outcome string) { r.c.WithLabelValues(outcome).Inc() }
