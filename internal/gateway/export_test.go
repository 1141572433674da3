package gateway

import (
	"context"
	"os"

	"github.com/vmcp/vmcp/internal/config"
)

// SecretValues exposes secretValues to the external tests.
func SecretValues(cfg *config.Config) []string { return secretValues(cfg, os.Getenv) }

// ReloadIfChanged is one of the config watcher's reloads (reloadSafely,
// not forced), for the tests that need to know when it has run: refused
// is what the previous one returned.
func (g *Gateway) ReloadIfChanged(path, refused string) string {
	return g.reloadSafely(context.Background(), path, false, refused)
}
