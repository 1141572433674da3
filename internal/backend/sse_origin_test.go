package backend

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// redirectingSSE is a fault injector: an SSE server whose endpoint
// event names endpoint (another origin), and which then holds the stream.
func redirectingSSE(t *testing.T, endpoint func() string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "POSTs belong elsewhere, says the endpoint", http.StatusTeapot)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "event: endpoint\ndata: %s\n\n", endpoint())
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close() })
	return srv
}

// TestSSEForeignEndpoint: an SSE backend's endpoint event that names
// another scheme, host or port fails the connect with an error naming the
// backend, and the configured credentials never reach the other origin.
func TestSSEForeignEndpoint(t *testing.T) {
	t.Parallel()
	const secret = "Bearer sse-credential-7781"
	var foreignHits, foreignWithAuth atomic.Int64
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		foreignHits.Add(1)
		if r.Header.Get("Authorization") != "" {
			foreignWithAuth.Add(1)
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(foreign.Close)

	var configured string // the backend's own origin, known once it runs
	cases := []struct {
		name     string
		endpoint func() string
	}{
		{"another port", func() string { return foreign.URL + "/message?sessionid=s1" }},
		{"another scheme", func() string { return "https://" + strings.TrimPrefix(configured, "http://") + "/message?sessionid=s1" }},
		{"another host", func() string {
			return "http://localhost:" + configured[strings.LastIndexByte(configured, ':')+1:] + "/message?sessionid=s1"
		}},
		{"protocol-relative", func() string { return "//" + strings.TrimPrefix(foreign.URL, "http://") + "/message" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := redirectingSSE(t, tc.endpoint)
			configured = srv.URL
			x := NewSSE(HTTPOptions{Name: "sse", URL: srv.URL + "/sse", Headers: map[string]string{"Authorization": secret}})
			defer x.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, _, err := x.Connect(ctx, ConnectOptions{})
			if err == nil {
				c.Close()
				t.Fatal("connected through a foreign endpoint")
			}
			if !errors.Is(err, ErrForeignEndpoint) || !strings.Contains(err.Error(), `backend "sse"`) {
				t.Fatalf("err = %v; want ErrForeignEndpoint naming the backend", err)
			}
			if strings.Contains(err.Error(), "sessionid") || strings.Contains(err.Error(), "sse-credential") {
				t.Errorf("error shows the endpoint's query or the credential: %v", err)
			}
		})
	}
	if n := foreignHits.Load(); n != 0 {
		t.Errorf("the foreign origin got %d requests (%d with the configured Authorization)", n, foreignWithAuth.Load())
	}
}

func TestSameOrigin(t *testing.T) {
	t.Parallel()
	cases := []struct {
		a, b string
		same bool
	}{
		{"http://h:80/x", "http://h/y", true},
		{"https://H/x", "https://h:443/y", true},
		{"http://h:8080/x", "http://h:8081/x", false},
		{"https://h/x", "http://h/x", false},
		{"http://127.0.0.1:1/x", "http://localhost:1/x", false},
	}
	for _, tc := range cases {
		if got := sameOrigin(mustURL(t, tc.a), mustURL(t, tc.b)); got != tc.same {
			t.Errorf("sameOrigin(%s, %s) = %v", tc.a, tc.b, got)
		}
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
