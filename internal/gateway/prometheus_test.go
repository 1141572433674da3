package gateway_test

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
)

// A real Prometheus scrapes vmcp, and PromQL through its HTTP API counts
// each backend's calls.
func TestPrometheusCountsCallsPerBackend(t *testing.T) {
	prom := requireTool(t, "VMCP_PROMETHEUS", "prometheus", "apt-get install -y prometheus")
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	files := fixture.StartHTTP(t, exampleserver.Options{Name: "files"})
	cfg := baseConfig(
		config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL},
		config.Backend{Name: "files", Transport: config.TransportStreamableHTTP, URL: files.URL})
	gw := startGateway(t, cfg, gateway.Options{})
	sid := rawInit(t, gw.URL)
	calls := map[string]int{"web_echo": 3, "files_whoami": 2}
	for tool, n := range calls {
		for range n {
			rawPost(t, gw.URL, sid, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"`+tool+`","arguments":{"text":"x"}}}`)
		}
	}

	dir := t.TempDir()
	target := strings.TrimPrefix(gw.Base, "http://")
	scrape := "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: vmcp\n    metrics_path: /metrics\n    static_configs:\n      - targets: ['" + target + "']\n"
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(scrape), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + freePort(t)
	startProcess(t, prom, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr)

	query := `sum by (backend) (vmcp_backend_call_duration_seconds_count{method="tools/call"})`
	var got map[string]string
	waitFor(t, "Prometheus to have scraped the calls", func() bool {
		var r struct {
			Data struct {
				Result []struct {
					Metric map[string]string `json:"metric"`
					Value  [2]any            `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if !fetchJSON("http://"+addr+"/api/v1/query?query="+url.QueryEscape(query), &r) {
			return false
		}
		got = map[string]string{}
		for _, s := range r.Data.Result {
			v, _ := s.Value[1].(string)
			got[s.Metric["backend"]] = v
		}
		return len(got) > 0
	})
	if got["web"] != "3" || got["files"] != "2" {
		t.Errorf("%s = %v, want web 3, files 2", query, got)
	}
}
