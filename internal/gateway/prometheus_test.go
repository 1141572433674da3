package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
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

	// Every query of the example dashboard is valid PromQL over metrics
	// vmcp has.
	raw, err := os.ReadFile(filepath.Join("..", "..", "examples", "observability", "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			expr := strings.ReplaceAll(tg.Expr, "$__rate_interval", "1m")
			var r struct {
				Status string `json:"status"`
			}
			resp, err := http.Get("http://" + addr + "/api/v1/query?query=" + url.QueryEscape(expr))
			if err != nil {
				t.Fatal(err)
			}
			json.NewDecoder(resp.Body).Decode(&r)
			resp.Body.Close()
			if r.Status != "success" {
				t.Errorf("dashboard panel %q: query %s: status %q", p.Title, expr, r.Status)
			}
			// Token requests are exported once a backend has outgoing
			// credentials; these have none.
			if metric := firstMetric(expr); metric != "" && metric != "vmcp_token_requests_total" && !strings.Contains(scrapeText(t, gw.Base), metric) {
				t.Errorf("dashboard panel %q: vmcp has no metric %s", p.Title, metric)
			}
		}
	}
}

// firstMetric is the first vmcp_ metric name in a PromQL expression.
func firstMetric(expr string) string {
	i := strings.Index(expr, "vmcp_")
	if i < 0 {
		return ""
	}
	j := i
	for j < len(expr) && (expr[j] == '_' || expr[j] >= 'a' && expr[j] <= 'z') {
		j++
	}
	return strings.TrimSuffix(strings.TrimSuffix(expr[i:j], "_bucket"), "_count")
}

func scrapeText(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
