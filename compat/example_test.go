package compat

import (
	"testing"

	"github.com/vmcp/vmcp/internal/config"
)

// TestReferenceServersExampleIsValid keeps examples/reference-servers, the
// README's config for the same servers as this suite, loadable. It needs
// no npm packages.
func TestReferenceServersExampleIsValid(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load("../examples/reference-servers/vmcp.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Backends) != 3 {
		t.Errorf("%d backends, want everything, files and memory", len(cfg.Backends))
	}
	for _, b := range cfg.Backends {
		if b.Transport != config.TransportStdio || b.Command[0] != "npx" {
			t.Errorf("backend %s: %s %v, want an npx stdio command", b.Name, b.Transport, b.Command)
		}
	}
}
