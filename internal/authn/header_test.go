package authn

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestBearerToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		headers []string
		want    string
		err     error
	}{
		{"none", nil, "", errNoCredentials},
		{"bearer", []string{"Bearer abc.def-_~+/=="}, "abc.def-_~+/==", nil},
		{"scheme any case", []string{"bEaReR tok"}, "tok", nil},
		{"extra spaces", []string{"Bearer   tok"}, "tok", nil},
		{"basic", []string{"Basic dXNlcjpwYXNz"}, "", errMalformed},
		{"no token", []string{"Bearer"}, "", errMalformed},
		{"empty token", []string{"Bearer "}, "", errMalformed},
		{"two tokens", []string{"Bearer a b"}, "", errMalformed},
		{"trailing space", []string{"Bearer tok "}, "", errMalformed},
		{"padding in the middle", []string{"Bearer a=b"}, "", errMalformed},
		{"only padding", []string{"Bearer =="}, "", errMalformed},
		{"control byte", []string{"Bearer a\x01"}, "", errMalformed},
		{"two headers", []string{"Bearer a", "Bearer b"}, "", errMalformed},
		{"too long", []string{"Bearer " + strings.Repeat("a", maxTokenBytes+1)}, "", errMalformed},
		{"longest", []string{"Bearer " + strings.Repeat("a", maxTokenBytes)}, strings.Repeat("a", maxTokenBytes), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			for _, v := range tt.headers {
				h.Add("Authorization", v)
			}
			got, err := bearerToken(h)
			if got != tt.want || !errors.Is(err, tt.err) {
				t.Fatalf("bearerToken = %.20q, %v; want %.20q, %v", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestAPIKeyHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		h    http.Header
		want string
		err  error
	}{
		{"none", http.Header{}, "", errNoCredentials},
		{"x-api-key", http.Header{"X-Api-Key": {"k1"}}, "k1", nil},
		{"bearer", http.Header{"Authorization": {"Bearer k2"}}, "k2", nil},
		{"both", http.Header{"X-Api-Key": {"k1"}, "Authorization": {"Bearer k2"}}, "", errMalformed},
		{"two keys", http.Header{"X-Api-Key": {"k1", "k2"}}, "", errMalformed},
		{"empty", http.Header{"X-Api-Key": {""}}, "", errMalformed},
		{"space", http.Header{"X-Api-Key": {"a b"}}, "", errMalformed},
		{"non-ascii", http.Header{"X-Api-Key": {"clé"}}, "", errMalformed},
		{"too long", http.Header{"X-Api-Key": {strings.Repeat("k", maxAPIKeyBytes+1)}}, "", errMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := apiKey(tt.h)
			if got != tt.want || !errors.Is(err, tt.err) {
				t.Fatalf("apiKey = %q, %v; want %q, %v", got, err, tt.want, tt.err)
			}
		})
	}
}

// FuzzAuthHeader: no header value makes the parsers panic, and whatever
// they accept is a single well-formed credential that parses back the
// same. Its seeds run with every go test.
func FuzzAuthHeader(f *testing.F) {
	for _, s := range []string{
		"", "Bearer", "Bearer ", "Bearer tok", "bearer a.b.c", "Bearer  a==", "Bearer a b",
		"Basic dXNlcjpwYXNz", "Bearer \x00", "Bearer eyJhbGciOiJub25lIn0.e30.", "Bearer ==", "Bearer a=b",
		"Bearer\ttok", "BearerX tok", "Bearer " + strings.Repeat("x", maxTokenBytes+1), "Bearer ü",
	} {
		f.Add(s, "")
		f.Add("", s)
	}
	f.Add("Bearer a", "b")
	f.Fuzz(func(t *testing.T, authz, xkey string) {
		h := http.Header{}
		if authz != "" {
			h.Set("Authorization", authz)
		}
		if xkey != "" {
			h.Set("X-Api-Key", xkey)
		}
		if tok, err := bearerToken(h); err == nil {
			if tok == "" || len(tok) > maxTokenBytes || strings.ContainsAny(tok, " \t\r\n") || !isToken68(tok, maxTokenBytes) {
				t.Fatalf("bearerToken accepted %q", tok)
			}
			again, err := bearerToken(http.Header{"Authorization": {"Bearer " + tok}})
			if err != nil || again != tok {
				t.Fatalf("%q does not parse back: %q %v", tok, again, err)
			}
		} else if !errors.Is(err, errNoCredentials) && !errors.Is(err, errMalformed) {
			t.Fatalf("unexpected error %v", err)
		}
		if k, err := apiKey(h); err == nil {
			if k == "" || strings.ContainsAny(k, " \t\r\n\x00") {
				t.Fatalf("apiKey accepted %q", k)
			}
			if xkey != "" && authz != "" {
				t.Fatalf("apiKey accepted a request with both headers")
			}
		}
	})
}
