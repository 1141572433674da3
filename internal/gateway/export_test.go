package gateway

import (
	"os"

	"github.com/vmcp/vmcp/internal/config"
)

// SecretValues exposes secretValues to the external tests.
func SecretValues(cfg *config.Config) []string { return secretValues(cfg, os.Getenv) }
