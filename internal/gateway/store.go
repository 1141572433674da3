package gateway

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/store"
)

// newStore builds the session metadata store the config asks for. The
// Redis password is read from the environment variable the config names,
// here and nowhere else, so it is never part of a Config or a log.
func newStore(c config.Store, s config.Session) (store.Store, error) {
	switch c.Type {
	case "", config.StoreMemory:
		return store.NewMemory(), nil
	case config.StoreRedis:
		var password string
		if name := c.Redis.PasswordEnv; name != "" {
			password = os.Getenv(name)
			if password == "" {
				return nil, fmt.Errorf("store.redis.passwordEnv: environment variable %s is not set or empty", name)
			}
		}
		ttl := redisTTL(s)
		r, err := store.NewRedis(store.RedisOptions{
			Address:    c.Redis.Address,
			DB:         c.Redis.DB,
			KeyPrefix:  c.Redis.KeyPrefix,
			Password:   password,
			TLS:        c.Redis.TLS,
			TTL:        ttl,
			TouchEvery: touchEvery(ttl),
		})
		if err != nil {
			return nil, fmt.Errorf("store.redis: %w", err)
		}
		return r, nil
	}
	return nil, fmt.Errorf("store.type: %q is not supported", c.Type)
}

// redisTTL is the Redis TTL of a session's metadata. Every use slides it,
// on whichever replica, so it is the session's idle timeout when there is
// one: a key that expires means the session went unused everywhere. The
// absolute session.ttl is enforced from the stored creation time. With
// neither, keys never expire.
func redisTTL(s config.Session) time.Duration {
	ttl := s.IdleTimeout.D()
	if abs := s.TTL.D(); ttl <= 0 || (abs > 0 && abs < ttl) {
		ttl = abs
	}
	return max(ttl, 0)
}

// touchEvery bounds the TTL refreshes per session: every 5 s at most, and
// often enough that a short TTL cannot lapse between two of them.
func touchEvery(ttl time.Duration) time.Duration {
	if ttl <= 0 {
		return 0
	}
	return max(min(5*time.Second, ttl/4), time.Millisecond)
}

// watchStore starts following deletions announced by other replicas, if
// the store is shared: the manager closes the runtimes it holds of the
// sessions deleted elsewhere. closeStore stops it.
func (g *Gateway) watchStore() {
	r, ok := g.store.(*store.Redis)
	if !ok {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.stopWatch, g.watchDone = cancel, make(chan struct{})
	go func() {
		defer close(g.watchDone)
		r.Subscribe(ctx, g.manager.Deleted)
	}()
}

// closeStore stops following deletions and closes the store's
// connections.
func (g *Gateway) closeStore() {
	if g.stopWatch != nil {
		g.stopWatch()
		<-g.watchDone
	}
	if r, ok := g.store.(*store.Redis); ok {
		r.Close()
	}
}
