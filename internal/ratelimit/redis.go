package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis keeps buckets in Redis, shared by every replica using the same
// server and prefix. Each Take is one script run, atomic on the server and
// timed by the server's clock, so replicas' clocks do not matter. A bucket
// is a hash under <prefix>rl:<key> that expires once it would be full.
// Safe for concurrent use; the Redis client is the caller's to close.
type Redis struct {
	rdb    redis.Scripter
	prefix string
}

// NewRedis returns a Limiter on rdb (which the caller owns and closes).
// Keys are <prefix>rl:<bucket key>; callers that share a Redis Cluster
// slot across a Take's buckets put a {hash tag} in their keys.
func NewRedis(rdb redis.Scripter, prefix string) *Redis {
	return &Redis{rdb: rdb, prefix: prefix}
}

// takeScript takes one token from every bucket in KEYS, or none.
// ARGV holds, per key, its rate (tokens per microsecond) and burst. The
// time is kept as TIME's seconds and microseconds, since Lua's numbers
// print with 14 digits and microseconds since the epoch need 16.
// It returns {1, 0} when it took, {0, wait in microseconds} when not.
var takeScript = redis.NewScript(`
local t = redis.call('TIME')
local level = {}
local wait = 0
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2*i-1])
  local burst = tonumber(ARGV[2*i])
  local v = redis.call('HMGET', key, 'tokens', 's', 'us')
  local tokens, s, us = tonumber(v[1]), tonumber(v[2]), tonumber(v[3])
  local elapsed = 0
  if tokens == nil or s == nil or us == nil then
    tokens = burst
  else
    elapsed = math.max(0, (tonumber(t[1]) - s) * 1000000 + tonumber(t[2]) - us)
  end
  tokens = math.min(burst, tokens + elapsed * rate)
  level[i] = tokens
  if tokens < 1 then
    wait = math.max(wait, math.ceil((1 - tokens) / rate))
  end
end
if wait > 0 then
  return {0, wait}
end
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2*i-1])
  local burst = tonumber(ARGV[2*i])
  redis.call('HSET', key, 'tokens', tostring(level[i] - 1), 's', t[1], 'us', t[2])
  redis.call('PEXPIRE', key, math.ceil(burst / rate / 1000) + 1000)
end
return {1, 0}
`)

// Take implements Limiter.
func (r *Redis) Take(ctx context.Context, bs []Bucket) (bool, time.Duration, error) {
	if len(bs) == 0 {
		return true, 0, nil
	}
	keys := make([]string, len(bs))
	args := make([]any, 0, 2*len(bs))
	for i, b := range bs {
		keys[i] = r.prefix + "rl:" + b.Key
		args = append(args, strconv.FormatFloat(b.Limit.Rate/1e6, 'g', -1, 64), b.Limit.Burst)
	}
	res, err := takeScript.Run(ctx, r.rdb, keys, args...).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("rate limit: redis: %w", err)
	}
	if len(res) != 2 {
		return false, 0, fmt.Errorf("rate limit: redis: unexpected reply %v", res)
	}
	if res[0] == 1 {
		return true, 0, nil
	}
	return false, time.Duration(res[1]) * time.Microsecond, nil
}
