package gateway_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/vmcp/vmcp/internal/certs/certstest"
	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
)

// servedCert is the certificate a gateway serves and its files.
type servedCert struct {
	certstest.Pair
	certFile, keyFile string
}

// startTLSRig starts the protocol rig's backends behind a gateway serving
// HTTPS with a certificate from ca; mutate adjusts the config.
func startTLSRig(t *testing.T, ca *certstest.CA, mutate func(*config.TLS)) (*protoRig, servedCert) {
	t.Helper()
	certFile, keyFile, pair := ca.Files(t)
	p := startProtoBackend(t, 0, 0)
	ex := fixture.StartHTTP(t, exampleserver.Options{Name: "ex"})
	cfg := baseConfig(
		config.Backend{Name: "p", Transport: config.TransportStreamableHTTP, URL: p.URL},
		config.Backend{Name: "ex", Transport: config.TransportStreamableHTTP, URL: ex.URL},
	)
	cfg.Server.TLS = &config.TLS{CertFile: certFile, KeyFile: keyFile}
	if mutate != nil {
		mutate(cfg.Server.TLS)
	}
	return &protoRig{gw: startGateway(t, cfg, gateway.Options{}), proto: p, ex: ex}, servedCert{pair, certFile, keyFile}
}

// tlsClient is an HTTP client trusting roots (nil: the system's), offering
// HTTP/2, presenting certs; it records the protocol of every response.
func tlsClient(t *testing.T, roots *x509.CertPool, certs ...tls.Certificate) (*http.Client, *protoRecorder) {
	t.Helper()
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots, Certificates: certs},
		ForceAttemptHTTP2: true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	rec := &protoRecorder{rt: tr}
	return &http.Client{Transport: rec}, rec
}

type protoRecorder struct {
	rt http.RoundTripper

	mu     sync.Mutex
	protos map[string]int
}

func (p *protoRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := p.rt.RoundTrip(req)
	if err == nil {
		p.mu.Lock()
		if p.protos == nil {
			p.protos = map[string]int{}
		}
		p.protos[resp.Proto]++
		p.mu.Unlock()
	}
	return resp, err
}

func (p *protoRecorder) CloseIdleConnections() {
	p.rt.(*http.Transport).CloseIdleConnections()
}

func (p *protoRecorder) seen() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.protos
}

// TestTLSServesAFullSessionOverHTTP2: a client that trusts the CA gets
// HTTP/2, and over it every part of a session works: initialize,
// tools/list, tools/call answered as JSON and as an SSE stream of
// progress, the standalone GET stream, resuming a stream with
// Last-Event-ID, cancellation by hanging up, and DELETE.
func TestTLSServesAFullSessionOverHTTP2(t *testing.T) {
	defer leakCheck(t)()
	t.Run("session", testHTTP2Session)
}

func testHTTP2Session(t *testing.T) {
	ca := certstest.NewCA(t)
	r, _ := startTLSRig(t, ca, nil)
	if !strings.HasPrefix(r.gw.URL, "https://") {
		t.Fatalf("gateway URL %s, want https", r.gw.URL)
	}
	hc, rec := tlsClient(t, ca.Pool)

	progress := make(chan float64, 8)
	toolsChanged := make(chan struct{}, 4)
	c := mcp.NewClient(&mcp.Implementation{Name: "vmcp-test", Version: "1"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			progress <- req.Params.Progress
		},
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) { toolsChanged <- struct{}{} },
	})
	ctx := context.Background()
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: r.gw.URL, HTTPClient: hc}, legacyEra)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, tool := range tools.Tools {
		names[tool.Name] = true
	}
	if !names["ex_echo"] || !names["p_wait_cancel"] {
		t.Fatalf("tools/list: %v", names)
	}
	if got := callText(t, cs, "ex_echo", map[string]any{"text": "over h2"}); got != "over h2" {
		t.Fatalf("echo = %q", got)
	}
	// Progress comes on the call's SSE stream, flushed event by event.
	params := &mcp.CallToolParams{Name: "ex_progress", Arguments: map[string]any{"steps": 3}}
	params.SetProgressToken("tok")
	if res, err := cs.CallTool(ctx, params); err != nil || res.IsError {
		t.Fatalf("progress call: %v %+v", err, res)
	}
	for i := range 3 {
		select {
		case <-progress:
		case <-time.After(20 * time.Second):
			t.Fatalf("progress notification %d never arrived", i+1)
		}
	}
	// A list change reaches the client on its standalone GET stream.
	callText(t, cs, "p_add_tool", nil)
	select {
	case <-toolsChanged:
	case <-time.After(20 * time.Second):
		t.Fatal("notifications/tools/list_changed never reached the client")
	}

	t.Run("resume with Last-Event-ID", func(t *testing.T) {
		sid := rawInitWith(t, hc, r.gw.URL)
		resp := ssePostWith(t, hc, r.gw.URL, sid, `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"ex_sleep_ms","arguments":{"ms":400}}}`)
		primingID := nextEventID(t, bufio.NewReader(resp.Body))
		resp.Body.Close() // resets the stream mid-call
		_, data := sseEvents(t, resumeWith(t, hc, r.gw.URL, sid, primingID), 1)
		if !strings.Contains(data[0], `"id":7`) || !strings.Contains(data[0], "slept") {
			t.Fatalf("resumed stream delivered %q, want the call's response", data[0])
		}
	})
	t.Run("hang-up cancels a JSON call", func(t *testing.T) { hangUpCancelsCall(t, hc, r) })

	if err := cs.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the session's DELETE reaches the backend", func() bool { return r.ex.Stats.Deletes() >= 1 })
	if seen := rec.seen(); len(seen) != 1 || seen["HTTP/2.0"] == 0 {
		t.Fatalf("responses by protocol: %v, want HTTP/2.0 only", seen)
	}
}

func TestTLSRefusesClients(t *testing.T) {
	t.Parallel()
	ca := certstest.NewCA(t)
	stranger := certstest.NewCA(t)
	server, _ := startTLSRig(t, ca, nil)
	mutual, _ := startTLSRig(t, ca, func(c *config.TLS) { c.ClientCAFile = ca.CAFile })

	health := func(hc *http.Client, r *protoRig) error {
		resp, err := hc.Get(r.gw.Base + "/health")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body)
		return err
	}
	withCA, _ := tlsClient(t, ca.Pool)
	withoutCA, _ := tlsClient(t, nil)
	withCert, _ := tlsClient(t, ca.Pool, ca.Issue(t).TLS(t))
	withStrangeCert, _ := tlsClient(t, ca.Pool, stranger.Issue(t).TLS(t))
	tests := []struct {
		name   string
		hc     *http.Client
		r      *protoRig
		refuse bool
	}{
		{"client with the CA", withCA, server, false},
		{"client without the CA", withoutCA, server, true},
		{"mTLS: client without a certificate", withCA, mutual, true},
		{"mTLS: client with a certificate of another CA", withStrangeCert, mutual, true},
		{"mTLS: client with a certificate of the CA", withCert, mutual, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := health(tc.hc, tc.r)
			if tc.refuse && err == nil {
				t.Fatal("served, want the handshake refused")
			}
			if !tc.refuse && err != nil {
				t.Fatalf("refused: %v", err)
			}
		})
	}
	if err := health(withoutCA, server); !errors.As(err, new(*tls.CertificateVerificationError)) {
		t.Errorf("without the CA: %v, want a certificate verification error", err)
	}
}

// TestTLSPicksUpARotatedCertificate: a certificate replaced on disk is the
// one new connections see, without a restart.
func TestTLSPicksUpARotatedCertificate(t *testing.T) {
	t.Parallel()
	ca := certstest.NewCA(t)
	r, first := startTLSRig(t, ca, nil)
	serial := func() int64 {
		hc, _ := tlsClient(t, ca.Pool) // a new connection each time
		defer hc.CloseIdleConnections()
		resp, err := hc.Get(r.gw.Base + "/health")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].SerialNumber.Int64()
	}
	if got := serial(); got != first.Serial {
		t.Fatalf("serving certificate %d, want %d", got, first.Serial)
	}
	next := ca.Issue(t)
	next.Write(t, first.certFile, first.keyFile)
	eventually(t, "new connections see the new certificate", func() bool { return serial() == next.Serial })
}
