// Package mrtr supports multi round-trip requests (MRTR, 2026-07-28) in
// front of backends that ask their client mid-call: a Sealer turns the
// state vmcp needs across a client's retries into an opaque, tamper-proof
// requestState, and a Registry holds the calls that wait for a retry.
package mrtr

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors of Open. Both mean the client must start the request afresh.
var (
	// ErrInvalid: the state was not sealed by this deployment's key, was
	// altered, or is presented by another identity.
	ErrInvalid = errors.New("invalid requestState")
	// ErrExpired: the state is genuine but too old.
	ErrExpired = errors.New("requestState expired")
)

// State is what vmcp keeps in a requestState. Exactly one of Call and
// Backend is set.
type State struct {
	// Call names a call of this deployment that waits for the client's
	// input (Registry).
	Call string `json:"c,omitempty"`
	// Replica is where the call waits: the MCP endpoint of the replica
	// that holds it, for another replica to forward the retry to.
	Replica string `json:"r,omitempty"`
	// Backend names the backend that answered with input requests of its
	// own; Inner is its requestState, passed back to it on retry.
	Backend string `json:"b,omitempty"`
	Inner   string `json:"i,omitempty"`
	// Method and Name bind the state to the request it was issued for
	// (tools/call and the tool's name, resources/read and the URI...).
	Method string `json:"m"`
	Name   string `json:"n,omitempty"`
	// Expires is when the state lapses, in Unix milliseconds.
	Expires int64 `json:"e"`
}

// prefix marks vmcp's states, so a state from elsewhere is rejected as
// such rather than as tampered.
const prefix = "vmcp1."

// Sealer seals and opens States with AES-256-GCM under one key; the
// caller's identity is the additional data, so a state opens only for the
// identity it was sealed for. Safe for concurrent use.
type Sealer struct {
	aead cipher.AEAD
	ttl  time.Duration
	now  func() time.Time
}

// KeySize is the length of a Sealer's key.
const KeySize = 32

// NewSealer returns a Sealer with key (KeySize bytes) whose states live
// for ttl. now is the clock (time.Now when nil).
func NewSealer(key []byte, ttl time.Duration, now func() time.Time) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("mrtr: key must be %d bytes, got %d", KeySize, len(key))
	}
	if ttl <= 0 {
		return nil, errors.New("mrtr: ttl must be positive")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &Sealer{aead: aead, ttl: ttl, now: now}, nil
}

// RandomKey returns a fresh key, for a deployment of one process.
func RandomKey() []byte {
	k := make([]byte, KeySize)
	rand.Read(k)
	return k
}

// ParseKey decodes a key given in config: base64 (standard or URL, padded
// or not) of KeySize bytes, or hex.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil && len(k) == KeySize {
			return k, nil
		}
	}
	if len(s) == 2*KeySize {
		k := make([]byte, KeySize)
		if _, err := fmt.Sscanf(s, "%x", &k); err == nil {
			return k, nil
		}
	}
	return nil, fmt.Errorf("key must be %d bytes in base64 or hex", KeySize)
}

// TTL is how long a sealed state lives.
func (s *Sealer) TTL() time.Duration { return s.ttl }

// Seal returns st as an opaque string bound to identity, expiring after
// the Sealer's ttl.
func (s *Sealer) Seal(identity string, st State) string {
	st.Expires = s.now().Add(s.ttl).UnixMilli()
	plain, _ := json.Marshal(st)
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	rand.Read(nonce)
	sealed := s.aead.Seal(nonce, nonce, plain, []byte(identity))
	return prefix + base64.RawURLEncoding.EncodeToString(sealed)
}

// Open returns the State sealed in token for identity: ErrInvalid if it
// was not sealed with this key for this identity or was altered,
// ErrExpired if it has lapsed.
func (s *Sealer) Open(identity, token string) (State, error) {
	var st State
	rest, ok := strings.CutPrefix(token, prefix)
	if !ok {
		return st, ErrInvalid
	}
	raw, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil || len(raw) < s.aead.NonceSize()+s.aead.Overhead() {
		return st, ErrInvalid
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], []byte(identity))
	if err != nil {
		return st, ErrInvalid
	}
	if json.Unmarshal(plain, &st) != nil {
		return st, ErrInvalid
	}
	if s.now().UnixMilli() >= st.Expires {
		return st, ErrExpired
	}
	return st, nil
}
