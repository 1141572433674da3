package store

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/vmcp/vmcp/internal/redact"
)

// ErrUnavailable means the store could not be reached or did not answer.
// Callers that are asked to create a session answer 503 on it; sessions
// whose runtime is already held in process keep serving.
var ErrUnavailable = errors.New("session store unavailable")

// RedisOptions configures NewRedis.
type RedisOptions struct {
	Address   string // host:port
	DB        int
	KeyPrefix string // prepended to every key and the channel; default "vmcp:"
	Password  string // the resolved secret, not the name of its variable
	TLS       bool   // connect with TLS, verifying the certificate against the host of Address
	// TTL is each session key's Redis TTL, slid by Update and Touch; 0
	// means keys never expire.
	TTL time.Duration
	// TouchEvery is the minimum interval between two TTL refreshes of one
	// session by Touch, bounding the writes per session; default 5s.
	TouchEvery time.Duration
}

// Redis is a Store shared by several vmcp replicas through one Redis
// server. Metadata is JSON under <prefix>session:<id>; deletions are
// announced on the channel <prefix>deleted. It is safe for concurrent use.
type Redis struct {
	client     *redis.Client
	prefix     string
	channel    string
	ttl        time.Duration
	touchEvery time.Duration
	password   string // kept only to scrub it from error messages
	now        func() time.Time
	pingEvery  time.Duration // health check of an idle subscription

	mu        sync.Mutex
	touched   map[string]time.Time // last TTL refresh per session ID
	lastPrune time.Time
}

const (
	defaultKeyPrefix  = "vmcp:"
	defaultTouchEvery = 5 * time.Second
	// Short timeouts so that a Redis outage turns into a prompt 503 rather
	// than a hung request.
	redisDialTimeout = 2 * time.Second
	redisIOTimeout   = 2 * time.Second
)

// NewRedis returns a Redis store. It does not connect: Redis may come up
// later, and until it does operations fail with ErrUnavailable. The
// caller must Close it.
func NewRedis(opts RedisOptions) (*Redis, error) {
	if opts.Address == "" {
		return nil, errors.New("store: redis address is empty")
	}
	host, _, err := net.SplitHostPort(opts.Address)
	if err != nil {
		return nil, fmt.Errorf("store: redis address: %w", err)
	}
	if opts.TTL < 0 || (opts.TTL > 0 && opts.TTL < time.Millisecond) {
		return nil, fmt.Errorf("store: redis TTL %v must be 0 or at least 1ms", opts.TTL)
	}
	if opts.TouchEvery < 0 {
		return nil, fmt.Errorf("store: redis touch interval %v is negative", opts.TouchEvery)
	}
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = defaultKeyPrefix
	}
	if opts.TouchEvery == 0 {
		opts.TouchEvery = defaultTouchEvery
	}
	o := &redis.Options{
		Addr:         opts.Address,
		DB:           opts.DB,
		Password:     opts.Password,
		DialTimeout:  redisDialTimeout,
		ReadTimeout:  redisIOTimeout,
		WriteTimeout: redisIOTimeout,
		// One retry covers a pooled connection that broke while Redis
		// restarted; more would only delay the 503 during an outage.
		MaxRetries:    1,
		DialerRetries: 1,
		// vmcp talks to plain Redis; the cluster maintenance handshake would
		// only add a round trip and log noise.
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	if opts.TLS {
		o.TLSConfig = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	return &Redis{
		client:     redis.NewClient(o),
		prefix:     opts.KeyPrefix,
		channel:    opts.KeyPrefix + "deleted",
		ttl:        opts.TTL,
		touchEvery: opts.TouchEvery,
		password:   opts.Password,
		now:        time.Now,
		pingEvery:  30 * time.Second,
		touched:    make(map[string]time.Time),
	}, nil
}

func (r *Redis) key(id string) string { return r.prefix + "session:" + id }

// Create stores m unless its ID is taken (ErrExists). The key expires
// after the TTL.
func (r *Redis) Create(ctx context.Context, m *Metadata) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("store: encoding metadata: %w", err)
	}
	ok, err := r.client.SetNX(ctx, r.key(m.ID), b, r.ttl).Result()
	if err != nil {
		return r.unavailable("create", m.ID, err)
	}
	if !ok {
		return ErrExists
	}
	r.noteTouch(m.ID, r.now())
	return nil
}

// Get returns the stored metadata, or ErrNotFound.
func (r *Redis) Get(ctx context.Context, id string) (*Metadata, error) {
	b, err := r.client.Get(ctx, r.key(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, r.unavailable("get", id, err)
	}
	var m Metadata
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("store: decoding metadata: %w", err)
	}
	return &m, nil
}

// Update replaces the metadata of an existing session and slides its
// TTL. It never recreates a session that was deleted or expired: it
// returns ErrNotFound instead.
func (r *Redis) Update(ctx context.Context, m *Metadata) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("store: encoding metadata: %w", err)
	}
	ok, err := r.client.SetXX(ctx, r.key(m.ID), b, r.ttl).Result()
	if err != nil {
		return r.unavailable("update", m.ID, err)
	}
	if !ok {
		r.forgetTouch(m.ID)
		return ErrNotFound
	}
	r.noteTouch(m.ID, r.now())
	return nil
}

// Delete removes a session, announces the deletion to every subscriber
// (see Subscribe), this replica included, and reports whether the session
// was there. Deleting an absent session is not an error; it is announced
// all the same.
func (r *Redis) Delete(ctx context.Context, id string) (bool, error) {
	// One MULTI/EXEC: the key never disappears without the announcement.
	var del *redis.IntCmd
	_, err := r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		del = p.Del(ctx, r.key(id))
		p.Publish(ctx, r.channel, id)
		return nil
	})
	r.forgetTouch(id)
	if err != nil {
		return false, r.unavailable("delete", id, err)
	}
	return del.Val() > 0, nil
}

// Touch slides the session's TTL, at most once per TouchEvery per
// session; calls in between return nil without talking to Redis. When it
// does refresh, it returns ErrNotFound if the session is gone. With no
// TTL configured it does nothing.
func (r *Redis) Touch(ctx context.Context, id string) error {
	if r.ttl == 0 {
		return nil
	}
	now := r.now()
	r.mu.Lock()
	r.pruneLocked(now)
	if last, ok := r.touched[id]; ok && now.Sub(last) < r.touchEvery {
		r.mu.Unlock()
		return nil
	}
	// Claim the refresh before sending it, so concurrent calls for the
	// same session send one command.
	r.touched[id] = now
	r.mu.Unlock()

	ok, err := r.client.PExpire(ctx, r.key(id), r.ttl).Result()
	if err != nil {
		r.forgetTouchAt(id, now) // let the next call try again
		return r.unavailable("touch", id, err)
	}
	if !ok {
		r.forgetTouchAt(id, now)
		return ErrNotFound
	}
	return nil
}

// Ping checks that Redis answers, for readiness probes.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.client.Ping(ctx).Err(); err != nil {
		return r.unavailable("ping", "", err)
	}
	return nil
}

// Scripter returns the store's Redis client for other state shared by the
// replicas on the same server (rate limits). The store owns and closes it.
func (r *Redis) Scripter() redis.Scripter { return r.client }

// KeyPrefix returns the prefix of every key the store writes.
func (r *Redis) KeyPrefix() string { return r.prefix }

// Close releases the connections. Operations after Close fail with
// ErrUnavailable, and Subscribe returns.
func (r *Redis) Close() error { return r.client.Close() }

func (r *Redis) noteTouch(id string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pruneLocked(at)
	r.touched[id] = at
}

func (r *Redis) forgetTouch(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.touched, id)
}

// forgetTouchAt drops id's entry only if it is still the one made at at.
func (r *Redis) forgetTouchAt(id string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.touched[id]; ok && t.Equal(at) {
		delete(r.touched, id)
	}
}

// pruneLocked drops entries too old to throttle anything, at most once
// per TouchEvery, so the map holds only recently touched sessions.
func (r *Redis) pruneLocked(now time.Time) {
	if now.Sub(r.lastPrune) < r.touchEvery {
		return
	}
	for id, t := range r.touched {
		if now.Sub(t) >= r.touchEvery {
			delete(r.touched, id)
		}
	}
	r.lastPrune = now
}

// storeError reports a failed Redis operation. Its message is scrubbed of
// the session ID and the password, which are secrets; it matches both
// ErrUnavailable and the underlying error with errors.Is.
type storeError struct {
	op    string
	msg   string
	cause error
}

func (e *storeError) Error() string {
	return fmt.Sprintf("%v: redis %s: %s", ErrUnavailable, e.op, e.msg)
}

func (e *storeError) Unwrap() []error { return []error{ErrUnavailable, e.cause} }

func (r *Redis) unavailable(op, id string, err error) error {
	msg := err.Error()
	if id != "" {
		msg = strings.ReplaceAll(msg, id, "[session]")
	}
	if r.password != "" {
		// Hidden whatever its length: it is a secret for certain.
		msg = strings.ReplaceAll(msg, r.password, redact.Mask)
	}
	return &storeError{op: op, msg: msg, cause: err}
}

var _ Store = (*Redis)(nil)
