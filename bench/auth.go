package main

import (
	"context"
	"fmt"
	"time"

	"github.com/vmcp/vmcp/internal/oidctest"
)

// authResource is the audience of the AUTH scenario's tokens; vmcp never
// dials it.
const authResource = "https://vmcp.bench/mcp"

// authScenario is issue 17's bench: S16 through a vmcp with incomingAuth
// oidc against S16 through the same kind of vmcp without auth, in the same
// run, rounds alternating. The OP is a real one (internal/oidctest, the op
// package of zitadel/oidc) run in the bench's process: vmcp discovers it,
// fetches its JWKS and verifies each request's RS256 JWT, which its token
// cache then keeps until exp. Each session of the auth-on side has its
// own subject and token, as separate users would.
func (r *runner) authScenario(ctx context.Context) error {
	fx, err := r.echoFixture(ctx)
	if err != nil {
		return err
	}
	op, err := oidctest.Serve(oidctest.Options{TokenTTL: time.Hour})
	if err != nil {
		return fmt.Errorf("OP: %w", err)
	}
	defer op.Close()
	cfg := &vmcpConfig{maxSessions: 5000, initConcurrency: r.opts.initConcurrency, oidcIssuer: op.Issuer(), resource: authResource}
	cfg.add("b0", fx.backend.url)
	v, err := r.fleet.startVMCP(ctx, r.bins.vmcp, r.tmp, r.opts.logLevel, cfg)
	if err != nil {
		return err
	}
	const sessions = 16
	tokens := make([]string, sessions)
	for i := range tokens {
		if tokens[i], err = op.Mint(ctx, fmt.Sprintf("bench-user-%d", i), []string{authResource}, nil, time.Hour); err != nil {
			return fmt.Errorf("OP: %w", err)
		}
	}
	if _, err := findTool(ctx, v.url, fx.tool, tokens[0]); err != nil {
		return fmt.Errorf("vmcp with oidc: %w", err)
	}
	med := r.abS16(ctx, fx, abSpec{id: "AUTH", what: "oidc/off", title: "AUTH: S16 with incoming OIDC against auth off",
		note:    "The OP is internal/oidctest (zitadel/oidc's op package) in the bench's process; each of the 16 sessions sends its own RS256 JWT on every request.",
		offName: "auth off", onName: "incomingAuth oidc", ratioHeader: "× auth off", v: v, tokens: tokens})
	off, on, rt := med.base, med.test, med.ratio()
	r.rep.check(rt >= 0.95 && off.errors == 0 && on.errors == 0, "AUTH",
		"oidc %.0f calls/s = %.3f× auth off (%.0f calls/s) at S16, errors oidc %d off %d; goal ≥ 0.95× with 0 errors",
		on.rate(), rt, off.rate(), on.errors, off.errors)
	r.noteErrSamples("AUTH", labeled{"auth off", off}, labeled{"oidc", on})
	return nil
}
