package config

import (
	"fmt"
	"net/textproto"
	"net/url"
	"strings"
)

// outgoingAuth checks a backend's outgoingAuth block. The client secret
// must be in the environment now, so that vmcp stops before it listens
// rather than failing every session later; its value is not read here.
func (v *validator) outgoingAuth(bp string, b *Backend, o *OutgoingAuth) {
	p := bp + ".outgoingAuth"
	switch o.Type {
	case OutgoingNone:
		for _, f := range [][2]string{{"tokenURL", o.TokenURL}, {"clientID", o.ClientID}, {"clientSecretEnv", o.ClientSecretEnv},
			{"audience", o.Audience}, {"resource", o.Resource}} {
			if f[1] != "" {
				v.fail(p+"."+f[0], "only valid with type clientCredentials or tokenExchange")
			}
		}
		if o.Scopes != nil {
			v.fail(p+".scopes", "only valid with type clientCredentials or tokenExchange")
		}
		return
	case OutgoingClientCredentials, OutgoingTokenExchange:
	default:
		v.fail(p+".type", "must be one of none, clientCredentials, tokenExchange (got %s)", v.got(p+".type", o.Type))
		return
	}
	if b.Transport == TransportStdio {
		v.fail(p, "only valid with transports streamable-http and sse")
	}
	for k := range b.Headers {
		if textproto.CanonicalMIMEHeaderKey(k) == "Authorization" {
			v.fail(keyPath(bp+".headers", k), "cannot be set with outgoingAuth type %s, which sets it", o.Type)
		}
	}
	switch {
	case o.TokenURL == "":
		v.fail(p+".tokenURL", "required: the token endpoint of the authorization server")
	case checkURL(o.TokenURL) != "":
		v.fail(p+".tokenURL", "%s", checkURL(o.TokenURL))
	}
	if o.ClientID == "" {
		v.fail(p+".clientID", "required")
	}
	switch name := o.ClientSecretEnv; {
	case name == "":
		v.fail(p+".clientSecretEnv", "required: the name of the environment variable that holds the client secret")
	case !envNameRE.MatchString(name):
		v.fail(p+".clientSecretEnv", "must be the name of an environment variable, such as FILES_CLIENT_SECRET (got %s)", v.got(p+".clientSecretEnv", name))
	default:
		if val, ok := v.d.lookupEnv(name); !ok || val == "" {
			v.fail(p+".clientSecretEnv", "environment variable %s is not set or empty", name)
		}
	}
	for i, s := range o.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			sp := fmt.Sprintf("%s.scopes[%d]", p, i)
			v.fail(sp, "must be one scope token, without spaces or quotes (got %s)", v.got(sp, s))
		}
	}
	if o.Resource != "" {
		if o.Type != OutgoingTokenExchange {
			v.fail(p+".resource", "only valid with type tokenExchange")
		} else if u, err := url.Parse(o.Resource); err != nil || !u.IsAbs() || u.Fragment != "" {
			v.fail(p+".resource", "must be an absolute URI without a fragment (RFC 8707) (got %s)", v.got(p+".resource", o.Resource))
		}
	}
}
