package frontend

import (
	"bufio"
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestStreamWriterGivesUpOnAStuckClient: a client that stops reading its
// stream cannot hold the stream's writer; once a write cannot reach the
// connection within the write timeout, serve returns an error. A stream
// idle for longer than the write timeout is not ended by it.
func TestStreamWriterGivesUpOnAStuckClient(t *testing.T) {
	t.Parallel()
	for _, proto := range []string{"HTTP/1.1", "HTTP/2.0"} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			const writeTimeout = 200 * time.Millisecond
			st := newStream(1, 4)
			served := make(chan error, 1)
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if err := startSSE(w, st, 0); err != nil {
					served <- err
					return
				}
				served <- st.serve(r.Context(), w, 0, nil, nil, writeTimeout)
			}))
			if proto == "HTTP/2.0" {
				srv.EnableHTTP2 = true
				srv.StartTLS()
			} else {
				srv.Start()
			}
			defer srv.Close()
			resp, err := srv.Client().Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.Proto != proto {
				t.Fatalf("served %s, want %s", resp.Proto, proto)
			}
			br := bufio.NewReader(resp.Body)
			readData := func() string {
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						t.Fatalf("stream ended: %v", err)
					}
					if d, ok := strings.CutPrefix(line, "data: "); ok && strings.TrimSpace(d) != "" {
						return strings.TrimSpace(d)
					}
				}
			}

			// Idle for longer than the write timeout: still alive.
			time.Sleep(2 * writeTimeout)
			st.push([]byte(`{"n":1}`))
			if got := readData(); got != `{"n":1}` {
				t.Fatalf("after idling, read %q", got)
			}

			// Now the client stops reading while events keep coming.
			big := bytes.Repeat([]byte("x"), 1<<20)
			bound := time.After(60 * time.Second) // generous: the outcome is asserted, not the speed
			for {
				select {
				case err := <-served:
					if err == nil {
						t.Fatal("serve returned no error for a client that stopped reading")
					}
					return
				case <-bound:
					t.Fatal("the stream's writer is still held by a client that stopped reading")
				case <-time.After(10 * time.Millisecond):
					st.push(big)
				}
			}
		})
	}
}
