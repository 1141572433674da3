// Package guard provides the session decorators that gate what a caller
// sees and calls: authorization policies (Policy) and rate limits
// (Limits). Each wraps a session's Operations (see session.Decorator);
// neither forks the call path: what a guard lets through goes on to the
// session's own routing unchanged, and what it stops never reaches a
// backend.
//
// The caller is the identity in the request's context
// (identity.FromContext); an anonymous caller is known by the identity its
// session is bound to (its client address, "ip:…").
package guard

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"

	"github.com/vmcp/vmcp/internal/jsonrpc"
)

// JSON-RPC error codes of the guards, in the implementation-defined
// server range, clear of the codes MCP and its SDKs give meanings
// (-32001 to -32005, -32020 to -32022, -32042): the go-sdk client, for
// one, takes -32003 and -32004 for a closing connection.
const (
	// CodeForbidden answers a call the caller's policy does not allow.
	CodeForbidden = -32010
	// CodeRateLimited answers a call over the caller's rate limit; data
	// carries retryAfterMs.
	CodeRateLimited = -32029
)

// errDuplicateKey reports arguments that name a key twice, exactly or in
// another case. Rules would see one value and a backend decoding with Go's
// encoding/json (case-insensitive, last wins) another.
var errDuplicateKey = errors.New("arguments name a key twice (perhaps in another case)")

// decodeArguments decodes a call's arguments for rules that read them;
// nil or null arguments are empty.
func decodeArguments(raw json.RawMessage) (map[string]any, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return map[string]any{}, nil
	}
	if err := checkKeys(raw); err != nil {
		return nil, err
	}
	var args map[string]any
	if err := json.Unmarshal(raw, &args); err != nil {
		return nil, errors.New("arguments must be an object")
	}
	return args, nil
}

// checkKeys fails if any object in raw has two keys equal without regard
// to case.
func checkKeys(raw json.RawMessage) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	var walk func() error
	walk = func() error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				key := strings.ToLower(k.(string))
				if seen[key] {
					return errDuplicateKey
				}
				seen[key] = true
				if err := walk(); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		case json.Delim('['):
			for dec.More() {
				if err := walk(); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		}
		return nil
	}
	if err := walk(); err != nil && !errors.Is(err, io.EOF) {
		if errors.Is(err, errDuplicateKey) {
			return err
		}
		return errors.New("arguments must be valid JSON")
	}
	return nil
}

// Observer counts the guards' refusals (the metrics). It must be safe for
// concurrent use and quick.
type Observer interface {
	// ObservePolicyDenial counts a call a policy refused; kind is tool,
	// resource or prompt.
	ObservePolicyDenial(kind string)
	// ObserveRateLimited counts a request over a limit; limit is call or
	// initialize.
	ObserveRateLimited(limit string)
}

type noObserver struct{}

func (noObserver) ObservePolicyDenial(string) {}
func (noObserver) ObserveRateLimited(string)  {}

// orNone is obs, or an Observer that counts nothing.
func orNone(obs Observer) Observer {
	if obs == nil {
		return noObserver{}
	}
	return obs
}

// invalidParams is the -32602 a malformed request gets.
func invalidParams(msg string) error {
	return jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "invalid params: %s", msg)
}
