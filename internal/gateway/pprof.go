package gateway

import (
	"net/http"
	"net/http/pprof"
	"strings"
)

// mountPprof registers the net/http/pprof handlers under /debug/pprof/ on
// mux. They expose stacks and memory, so they are served only when the
// config sets server.pprof (off by default).
func mountPprof(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}

// withPprof returns h itself unless on is set; then it returns a handler
// that sends /debug/pprof/ to pprof and every other request to h, so a
// profile is taken on the same request path it measures.
func withPprof(on bool, h http.Handler) http.Handler {
	if !on {
		return h
	}
	mux := http.NewServeMux()
	mountPprof(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/debug/pprof/") {
			mux.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}
