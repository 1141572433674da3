package config

import (
	"os"
	"strings"
	"testing"
)

// FuzzParse checks that no input panics, that Parse returns exactly one of
// a Config or an error, and that an expanded value never reaches an error.
func FuzzParse(f *testing.F) {
	design, err := os.ReadFile("testdata/design.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(design))
	f.Add(minimal)
	f.Add("backends: &b [{name: a, keepalive: *b, transport: stdio, command: &c [*c]}]\n")
	f.Add("session: &s {ttl: *s}\n? [a]\n: b\n")
	f.Add("backends:\n  - {name: a, transport: sse, url: \"${V}\", headers: {\"${V}\": \"${V}\"}}\n")
	const secret = "zq9secretzq9"
	lookup := WithLookupEnv(func(k string) (string, bool) { return secret, k == "V" })
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := Parse([]byte(s), lookup)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("Parse = %v, %v: want exactly one", cfg, err)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Fatalf("error shows an expanded value: %v", err)
		}
	})
}
