package authn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// keySet is the issuer's JWKS, cached. A token signed by a key it does not
// hold makes it fetch the set again, which is how a provider's key
// rotation reaches vmcp; but at most once per minInterval, shared by every
// request waiting for it, so that tokens naming made-up keys cannot turn
// vmcp into a flood of requests to the provider. It implements go-oidc's
// KeySet; go-oidc has checked the algorithm before it calls it. Safe for
// concurrent use.
type keySet struct {
	hc          *http.Client
	url         string
	algs        []jose.SignatureAlgorithm
	minInterval time.Duration
	now         func() time.Time

	mu       sync.Mutex
	keys     []jose.JSONWebKey
	fetched  time.Time     // when the last fetch ended
	inflight chan struct{} // closed when the fetch under way ends
	err      error         // of the last fetch
}

// jwksMinInterval is the least time between two fetches of the JWKS.
const jwksMinInterval = time.Second

var errNoKey = errors.New("no key of the issuer verifies the token")

func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(raw, k.algs)
	if err != nil {
		return nil, err
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("token must have one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	k.mu.Lock()
	keys := k.keys
	k.mu.Unlock()
	if p, ok := verifyWith(jws, keys, kid); ok {
		return p, nil
	}
	keys, err = k.refresh(ctx)
	if err != nil {
		return nil, err
	}
	if p, ok := verifyWith(jws, keys, kid); ok {
		return p, nil
	}
	return nil, errNoKey
}

func verifyWith(jws *jose.JSONWebSignature, keys []jose.JSONWebKey, kid string) ([]byte, bool) {
	for i := range keys {
		if kid != "" && keys[i].KeyID != kid {
			continue
		}
		if p, err := jws.Verify(&keys[i]); err == nil {
			return p, true
		}
	}
	return nil, false
}

// refresh fetches the key set, or waits for the fetch under way. The
// caller that starts a fetch runs it, after waiting out minInterval since
// the last one; the others wait for its result.
func (k *keySet) refresh(ctx context.Context) ([]jose.JSONWebKey, error) {
	k.mu.Lock()
	if done := k.inflight; done != nil {
		k.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		k.mu.Lock()
		defer k.mu.Unlock()
		return k.keys, k.err
	}
	done := make(chan struct{})
	k.inflight = done
	wait := k.minInterval - k.now().Sub(k.fetched)
	k.mu.Unlock()

	keys, err := k.fetch(ctx, wait)
	k.mu.Lock()
	defer k.mu.Unlock()
	if err == nil {
		k.keys = keys
	}
	k.err, k.fetched, k.inflight = err, k.now(), nil
	close(done)
	return k.keys, err
}

func (k *keySet) fetch(ctx context.Context, wait time.Duration) ([]jose.JSONWebKey, error) {
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching JWKS: %s", resp.Status)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return nil, fmt.Errorf("fetching JWKS: %w", err)
	}
	// A key vmcp cannot use (an unknown kty, an encryption key) is
	// skipped, not fatal: the others still verify.
	keys := make([]jose.JSONWebKey, 0, len(set.Keys))
	for _, raw := range set.Keys {
		var key jose.JSONWebKey
		if json.Unmarshal(raw, &key) == nil && key.Valid() && key.IsPublic() && (key.Use == "" || key.Use == "sig") {
			keys = append(keys, key)
		}
	}
	return keys, nil
}
