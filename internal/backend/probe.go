package backend

import (
	"context"
	"encoding/json"
	"fmt"
)

// Probe checks that a backend can be reached: it connects one backend
// session with opts, runs the initialize handshake, lists the tools of a
// backend that offers some, and closes the session again. A stdio backend gets a process of its own, outside its warm pool,
// so that a probe neither takes a warm process nor teaches the pool its
// handshake. A modern backend is asked server/discover even if a fresh
// answer is cached.
func Probe(ctx context.Context, x Connector, opts ConnectOptions) (*InitializeResult, error) {
	var c Client
	var res *InitializeResult
	var err error
	if sx, ok := x.(*stdioConnector); ok {
		var sc *client
		if sc, res, err = sx.connectCold(ctx, opts); err == nil {
			c = sc
		}
	} else {
		// A probe asks the backend itself, not the discover cache.
		c, res, err = x.Connect(withFreshDiscover(ctx), opts)
	}
	if err != nil {
		return nil, err
	}
	defer c.Close()
	// A session lists the backend's tools next; a list it cannot take
	// (over maxResponseBytes, say) leaves the backend out of every
	// session, so it fails the probe too.
	var caps map[string]json.RawMessage
	if json.Unmarshal(res.Capabilities, &caps) == nil && caps["tools"] != nil {
		if _, err := c.Call(ctx, "tools/list", json.RawMessage(`{}`)); err != nil {
			return nil, fmt.Errorf("tools/list: %w", err)
		}
	}
	return res, nil
}
