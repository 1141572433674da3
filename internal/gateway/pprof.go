package gateway

import (
	"net/http"
	"net/http/pprof"
)

// mountPprof registers the net/http/pprof handlers under /debug/pprof/ on
// mux. They expose stacks and memory, so they are served only when the
// config sets server.pprof (off by default), and only on the admin
// listener (server.adminListen).
func mountPprof(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}

// pprofHandler serves the profiles under /debug/pprof/ when on (the
// frontend puts it on the admin listener only), else it is nil.
func pprofHandler(on bool) http.Handler {
	if !on {
		return nil
	}
	mux := http.NewServeMux()
	mountPprof(mux)
	return mux
}
