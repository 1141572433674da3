package store

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// Backoff between attempts to (re)subscribe while Redis is unreachable.
const (
	subscribeMinBackoff = 50 * time.Millisecond
	subscribeMaxBackoff = 2 * time.Second
)

// Subscribe calls onDelete with the ID of every session deleted through
// any Redis store sharing this server and key prefix, this one included,
// so the replica holding that session's runtime can close it.
//
// Subscribe blocks until ctx is done or r is closed: the caller runs it on
// a goroutine it owns and cancels ctx to stop it. It reconnects on its own
// when Redis goes away and comes back. onDelete runs on that goroutine,
// one call at a time, and should return quickly.
//
// Deletions published while the subscription is down are not redelivered,
// so holders should still treat ErrNotFound from Get or Touch as the
// session having ended.
func (r *Redis) Subscribe(ctx context.Context, onDelete func(id string)) {
	backoff := subscribeMinBackoff
	for ctx.Err() == nil {
		subscribed, err := r.subscribeOnce(ctx, onDelete)
		if errors.Is(err, redis.ErrClosed) {
			return
		}
		if subscribed {
			backoff = subscribeMinBackoff
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, subscribeMaxBackoff)
	}
}

// subscribeOnce runs one subscription until it breaks or ctx is done. It
// reports whether the subscription was established.
func (r *Redis) subscribeOnce(ctx context.Context, onDelete func(id string)) (bool, error) {
	ps := r.client.Subscribe(ctx)
	defer ps.Close()
	// Receive does not watch ctx while blocked on the socket; closing the
	// subscription unblocks it.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()

	if err := ps.Subscribe(ctx, r.channel); err != nil {
		return false, err
	}
	awaitingPong := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, r.pingEvery)
		if err != nil {
			// A quiet channel is normal; check the connection is alive with
			// a PING, and give up on it if the next wait is silent too.
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !awaitingPong && ctx.Err() == nil {
				if err := ps.Ping(ctx); err != nil {
					return true, err
				}
				awaitingPong = true
				continue
			}
			return true, err
		}
		awaitingPong = false
		if m, ok := msg.(*redis.Message); ok && m.Channel == r.channel {
			onDelete(m.Payload)
		}
	}
}
