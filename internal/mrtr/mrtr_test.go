package mrtr

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newSealer(t *testing.T, key []byte, c *clock) *Sealer {
	t.Helper()
	s, err := NewSealer(key, time.Minute, c.now)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealOpen(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	key := RandomKey()
	s := newSealer(t, key, c)
	st := State{Call: "abc", Method: "tools/call", Name: "echo"}
	tok := s.Seal("sub:iss\x00alice", st)
	flip := func(tok string) string {
		raw, _ := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(tok, prefix))
		raw[len(raw)/2] ^= 1
		return prefix + base64.RawURLEncoding.EncodeToString(raw)
	}
	tests := []struct {
		name     string
		sealer   *Sealer
		identity string
		token    string
		advance  time.Duration
		want     error
	}{
		{"genuine", s, "sub:iss\x00alice", tok, 0, nil},
		{"just before expiry", s, "sub:iss\x00alice", tok, time.Minute - time.Millisecond, nil},
		{"expired", s, "sub:iss\x00alice", tok, time.Minute, ErrExpired},
		{"other identity", s, "sub:iss\x00bob", tok, 0, ErrInvalid},
		{"anonymous", s, "anonymous", tok, 0, ErrInvalid},
		{"suffix appended", s, "sub:iss\x00alice", tok + "-TAMPERED", 0, ErrInvalid},
		{"bit flipped", s, "sub:iss\x00alice", flip(tok), 0, ErrInvalid},
		{"truncated", s, "sub:iss\x00alice", tok[:len(tok)-4], 0, ErrInvalid},
		{"not ours", s, "sub:iss\x00alice", "round=1", 0, ErrInvalid},
		{"empty", s, "sub:iss\x00alice", "", 0, ErrInvalid},
		{"other key", newSealer(t, RandomKey(), c), "sub:iss\x00alice", tok, 0, ErrInvalid},
		{"same key elsewhere", newSealer(t, key, c), "sub:iss\x00alice", tok, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc := &clock{t: c.t.Add(tt.advance)}
			o := *tt.sealer
			o.now = cc.now
			got, err := o.Open(tt.identity, tt.token)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open: err = %v, want %v", err, tt.want)
			}
			if err == nil && (got.Call != st.Call || got.Method != st.Method || got.Name != st.Name) {
				t.Fatalf("Open = %+v, want %+v", got, st)
			}
		})
	}
}

func TestSealIsOpaque(t *testing.T) {
	t.Parallel()
	s := newSealer(t, RandomKey(), &clock{t: time.Now()})
	a := s.Seal("anonymous", State{Backend: "files", Inner: "secret-inner-state", Method: "tools/call"})
	b := s.Seal("anonymous", State{Backend: "files", Inner: "secret-inner-state", Method: "tools/call"})
	if strings.Contains(a, "secret") || strings.Contains(a, "files") {
		t.Fatalf("sealed state shows its content: %s", a)
	}
	if a == b {
		t.Fatal("two seals of one state are equal: the nonce is not fresh")
	}
}

func TestParseKey(t *testing.T) {
	t.Parallel()
	k := RandomKey()
	tests := []struct {
		in string
		ok bool
	}{
		{base64.StdEncoding.EncodeToString(k), true},
		{base64.RawURLEncoding.EncodeToString(k), true},
		{" " + base64.StdEncoding.EncodeToString(k) + "\n", true},
		{strings.Repeat("ab", KeySize), true},
		{"short", false},
		{base64.StdEncoding.EncodeToString(k[:16]), false},
		{"", false},
	}
	for _, tt := range tests {
		got, err := ParseKey(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParseKey(%q): err = %v, want ok=%v", tt.in, err, tt.ok)
		}
		if err == nil && len(got) != KeySize {
			t.Errorf("ParseKey(%q) = %d bytes", tt.in, len(got))
		}
	}
	if _, err := NewSealer(k[:16], time.Minute, nil); err == nil {
		t.Error("NewSealer accepted a 16-byte key")
	}
}

type waiter struct{ expired chan struct{} }

func (w *waiter) Expire() { close(w.expired) }

func TestRegistry(t *testing.T) {
	t.Parallel()
	r := NewRegistry[*waiter](2, time.Hour)
	a, b := &waiter{make(chan struct{})}, &waiter{make(chan struct{})}
	if err := r.Park("a", a); err != nil {
		t.Fatal(err)
	}
	if err := r.Park("b", b); err != nil {
		t.Fatal(err)
	}
	if err := r.Park("c", &waiter{make(chan struct{})}); !errors.Is(err, ErrFull) {
		t.Fatalf("third Park: err = %v, want ErrFull", err)
	}
	if w, ok := r.Take("a"); !ok || w != a {
		t.Fatal("Take(a) did not return a")
	}
	if _, ok := r.Take("a"); ok {
		t.Fatal("a second Take of one call succeeded")
	}
	if r.Len() != 1 {
		t.Fatalf("Len = %d, want 1", r.Len())
	}
	r.Close()
	<-b.expired // Close expires what waits
	select {
	case <-a.expired:
		t.Fatal("a call taken before Close was expired")
	default:
	}
	if err := r.Park("d", &waiter{make(chan struct{})}); !errors.Is(err, ErrFull) {
		t.Fatalf("Park after Close: err = %v", err)
	}
	if n := r.Expired(); n != 0 {
		t.Errorf("Expired = %d after Close, want 0: only calls that waited too long count", n)
	}
}

func TestRegistryExpires(t *testing.T) {
	t.Parallel()
	r := NewRegistry[*waiter](4, time.Millisecond)
	w := &waiter{make(chan struct{})}
	if err := r.Park("x", w); err != nil {
		t.Fatal(err)
	}
	<-w.expired
	if _, ok := r.Take("x"); ok {
		t.Fatal("an expired call could still be taken")
	}
	if n := r.Expired(); n != 1 {
		t.Errorf("Expired = %d, want 1", n)
	}
}
