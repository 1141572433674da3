package frontend

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// checkOrigin guards against DNS rebinding: a web page must not be able to
// reach a gateway on loopback through a hostile DNS name. The Host must be
// a loopback name (when ProtectLocalhost) or an allowed host, and an Origin,
// when present, must be loopback or allowed.
func (s *Server) checkOrigin(r *http.Request) error {
	return s.checkHostOrigin(r, s.opts.ProtectLocalhost)
}

// checkHostOrigin is checkOrigin for a listener that is on loopback or not
// (protectLocalhost), with the configured allowed hosts and origins.
//
// A request with no Host at all (HTTP/1.0, as HAProxy's health checks
// send) passes the Host check: every browser sends one, so it cannot be a
// rebinding page's.
func (s *Server) checkHostOrigin(r *http.Request, protectLocalhost bool) error {
	if (protectLocalhost || len(s.opts.AllowedHosts) > 0) && r.Host != "" {
		host := hostOnly(r.Host)
		if !(protectLocalhost && isLoopbackName(host)) && !contains(s.opts.AllowedHosts, host) && !contains(s.opts.AllowedHosts, r.Host) {
			return errors.New("host not allowed")
		}
	}
	if o := r.Header.Get("Origin"); o != "" {
		if contains(s.opts.AllowedOrigins, o) {
			return nil
		}
		u, err := url.Parse(o)
		if err != nil || !isLoopbackName(hostOnly(u.Host)) {
			return errors.New("origin not allowed")
		}
	}
	return nil
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

func isLoopbackName(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if strings.EqualFold(x, v) {
			return true
		}
	}
	return false
}
