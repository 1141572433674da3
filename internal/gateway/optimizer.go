package gateway

import (
	"log/slog"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/optimizer"
	"github.com/vmcp/vmcp/internal/session"
)

// withOptimizer puts the optimizer's decorator, when configured, before
// (outside) decorators, so that call_tool meets authorization and rate
// limits as a direct call does and find_tool sees the caller's filtered
// tools/list.
func withOptimizer(cfg *config.Config, log *slog.Logger, decorators []session.Decorator) []session.Decorator {
	o := cfg.Optimizer
	if !o.Enabled {
		return decorators
	}
	opt := optimizer.New(optimizer.Options{DefaultLimit: o.DefaultLimit, MaxLimit: o.MaxLimit, Logger: log})
	return append([]session.Decorator{opt.Decorator()}, decorators...)
}
