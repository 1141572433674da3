package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/vmcp/vmcp/internal/authn"
	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/frontend"
)

// discoveryTimeout bounds the startup discovery of the OIDC issuer.
const discoveryTimeout = 15 * time.Second

// CheckListen reports the error vmcp serve stops with when cfg listens
// on a non-loopback address without incomingAuth. vmcp validate calls it
// too, so that a config it passes is one vmcp serve starts with.
func CheckListen(cfg *config.Config) error {
	if cfg.IncomingAuth != nil || isLoopbackListen(cfg.Listen) {
		return nil
	}
	return fmt.Errorf("incomingAuth is not set and listen address %s is not loopback: "+
		"vmcp will not serve unauthenticated callers on a network. Add to the config "+
		"incomingAuth with type oidc (tokens from your identity provider), apiKey (hashed keys), "+
		"or anonymous (anyone who can reach the port); see the README, Authentication", cfg.Listen)
}

// incomingAuth returns the front end's Authenticator for cfg, or nil when
// callers are anonymous. Without incomingAuth vmcp serves anonymous
// callers on a loopback listener only (with a WARN); on any other
// listener it refuses to start, so that a gateway on a network is never
// open by accident.
func incomingAuth(cfg *config.Config, log *slog.Logger, obs authn.Observer) (frontend.Authenticator, error) {
	if err := CheckListen(cfg); err != nil {
		return nil, err
	}
	a := cfg.IncomingAuth
	switch {
	case a == nil:
		log.Warn("no incomingAuth configured: every caller is anonymous (allowed on a loopback listener only)")
		return nil, nil
	case a.Type == config.AuthAnonymous:
		log.Info("incomingAuth: anonymous; every caller is let in")
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), discoveryTimeout)
	defer cancel()
	au, err := authn.New(ctx, a, authn.Options{Logger: log, Observer: obs})
	if err != nil {
		return nil, err
	}
	return au, nil
}
