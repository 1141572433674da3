package backend

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/vmcp/vmcp/internal/config"
	testfix "github.com/vmcp/vmcp/internal/fixture"
)

// tlsBackend serves the fixture's MCP server over TLS with HTTP/2, asking
// for a client certificate when mutual is set. It records the protocol of
// the last request and whether it came with a verified client certificate.
type tlsBackend struct {
	url          string
	proto        atomic.Value // string
	clientVerify atomic.Bool
}

func startTLS(t *testing.T, files *testfix.TLSFiles, mutual, sse bool) *tlsBackend {
	t.Helper()
	f := newFixture()
	get := func(*http.Request) *mcp.Server { return f.server }
	var h http.Handler = mcp.NewStreamableHTTPHandler(get, nil)
	if sse {
		h = mcp.NewSSEHandler(get, nil)
	}
	b := &tlsBackend{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.proto.Store(r.Proto)
		b.clientVerify.Store(len(r.TLS.VerifiedChains) > 0)
		h.ServeHTTP(w, r)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{files.Server}}
	if mutual {
		srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
		srv.TLS.ClientCAs = files.Pool
	}
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	b.url = srv.URL + "/mcp"
	return b
}

// tlsConnector makes a connector with the tls settings of a config file.
func tlsConnector(t *testing.T, url string, c *config.BackendTLS, sse bool) Connector {
	t.Helper()
	opts := HTTPOptions{Name: "secure", URL: url}
	if c != nil {
		tc, err := c.ClientConfig()
		if err != nil {
			t.Fatal(err)
		}
		opts.TLS = tc
	}
	x := NewStreamableHTTP(opts)
	if sse {
		x = NewSSE(opts)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

func TestTLSBackend(t *testing.T) {
	t.Parallel()
	files := testfix.NewTLSFiles(t)
	for _, tc := range []struct {
		name   string
		mutual bool
		tls    *config.BackendTLS
		fail   string // in the error, if the connection must fail ("a|b": either)
		sse    bool   // the SSE transport
	}{
		{"sse with caFile", false, &config.BackendTLS{CAFile: files.CAFile}, "", true},
		{"sse mutual", true, &config.BackendTLS{CAFile: files.CAFile, CertFile: files.ClientCert, KeyFile: files.ClientKey}, "", true},
		{"sse without the CA", false, nil, "certificate", true},
		{"with caFile", false, &config.BackendTLS{CAFile: files.CAFile}, "", false},
		{"mutual with certFile and keyFile", true, &config.BackendTLS{CAFile: files.CAFile, CertFile: files.ClientCert, KeyFile: files.ClientKey}, "", false},
		{"without the CA", false, nil, "certificate", false},
		{"with another CA", false, &config.BackendTLS{CAFile: files.OtherCAFile}, "certificate", false},
		// In TLS 1.3 the server refuses the missing certificate after the
		// client's handshake is done: the client may first see only that
		// its connection could not be set up, or broke.
		{"mutual without a client certificate", true, &config.BackendTLS{CAFile: files.CAFile}, "certificate|could not be established|broken pipe|connection reset", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := startTLS(t, files, tc.mutual, tc.sse)
			x := tlsConnector(t, srv.url, tc.tls, tc.sse)
			c, _, err := x.Connect(context.Background(), ConnectOptions{})
			if tc.fail != "" {
				if err == nil {
					c.Close()
					t.Fatal("connected")
				}
				says := slices.ContainsFunc(strings.Split(tc.fail, "|"), func(w string) bool { return strings.Contains(err.Error(), w) })
				if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), `backend "secure"`) || !says {
					t.Errorf("err = %v, want ErrUnavailable naming the backend and saying %q", err, tc.fail)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for _, want := range []string{"1", "2"} {
				if got := mustCall(t, c, "count", nil); got != want {
					t.Errorf("count = %s, want %s", got, want)
				}
			}
			if p, _ := srv.proto.Load().(string); p != "HTTP/2.0" && !tc.sse {
				t.Errorf("protocol %q, want HTTP/2.0 over TLS", p)
			}
			if tc.mutual && !srv.clientVerify.Load() {
				t.Error("the backend saw no verified client certificate")
			}
		})
	}
}
