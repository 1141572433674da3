package gateway

import (
	"context"
	"fmt"
	"os"

	"github.com/vmcp/vmcp/internal/backend"
	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/credentials"
	"github.com/vmcp/vmcp/internal/session"
)

// outgoingCredentials builds backend b's credential provider from its
// outgoingAuth block, or returns nil for none. The client secret is read
// from the environment variable the config names, here and nowhere else,
// so it is never part of a Config or a log.
func outgoingCredentials(b config.Backend, obs *observability) (*credentials.Provider, error) {
	o := b.OutgoingAuth
	if o == nil || o.Type == "" || o.Type == config.OutgoingNone {
		return nil, nil
	}
	secret := os.Getenv(o.ClientSecretEnv)
	if secret == "" {
		return nil, fmt.Errorf("backend %q: outgoingAuth.clientSecretEnv: environment variable %s is not set or empty", b.Name, o.ClientSecretEnv)
	}
	grant := credentials.ClientCredentials
	if o.Type == config.OutgoingTokenExchange {
		grant = credentials.TokenExchange
	}
	opts := credentials.Options{
		Grant: grant, TokenURL: o.TokenURL, ClientID: o.ClientID, ClientSecret: secret,
		Scopes: o.Scopes, Audience: o.Audience, Resource: o.Resource,
	}
	obs.credentialOptions(b.Name, &opts)
	p, err := credentials.New(opts)
	if err != nil {
		return nil, fmt.Errorf("backend %q: outgoingAuth: %w", b.Name, err)
	}
	return p, nil
}

// sessionCredentials gives sessions a backend's credentials.
type sessionCredentials struct{ p *credentials.Provider }

func (c sessionCredentials) Source(ctx context.Context) (session.CredentialSource, error) {
	src, err := c.p.Source(ctx)
	if err != nil {
		return nil, err
	}
	return src, nil
}

// forSessions is p as session.Credentials; nil for no provider.
func forSessions(p *credentials.Provider) session.Credentials {
	if p == nil {
		return nil
	}
	return sessionCredentials{p}
}

// probeToken is what the startup probe connects to a backend with: vmcp's
// own token for client credentials. A token exchange needs a caller,
// which the probe does not have.
func probeToken(p *credentials.Provider) backend.TokenSource {
	if p == nil || p.Grant() != credentials.ClientCredentials {
		return nil
	}
	src, err := p.Source(context.Background())
	if err != nil {
		return nil
	}
	return src
}
