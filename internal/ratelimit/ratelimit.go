// Package ratelimit provides token buckets, kept in process (Memory) or in
// Redis (Redis) so that every replica sharing the server shares the limits.
//
// A bucket holds at most Burst tokens and gains Rate tokens per second; a
// request takes one. Take takes one token from each of several buckets
// atomically: all of them or none, so a request refused by one limit
// costs nothing under the others.
package ratelimit

import (
	"context"
	"math"
	"time"
)

// Limit is a token bucket's shape.
type Limit struct {
	Rate  float64 // tokens per second, > 0
	Burst int     // capacity, >= 1
}

// Bucket is one bucket to take from: its key (what it limits, such as an
// identity and a rule) and its limit. A key must always come with the
// same Limit.
type Bucket struct {
	Key   string
	Limit Limit
}

// Limiter takes tokens. Implementations are safe for concurrent use.
type Limiter interface {
	// Take takes one token from every bucket, or from none. When one is
	// empty, ok is false and wait is how long until every bucket holds a
	// token again. An error (Redis unreachable) leaves ok false.
	Take(ctx context.Context, buckets []Bucket) (ok bool, wait time.Duration, err error)
}

// refill returns the tokens of a bucket that held tokens at last, after
// elapsed.
func refill(l Limit, tokens float64, elapsed time.Duration) float64 {
	return math.Min(float64(l.Burst), tokens+elapsed.Seconds()*l.Rate)
}

// waitFor is how long a bucket holding tokens (< 1) needs to hold one.
func waitFor(l Limit, tokens float64) time.Duration {
	return time.Duration(math.Ceil((1 - tokens) / l.Rate * float64(time.Second)))
}

// fullAfter is how long an empty bucket takes to fill: past it, a bucket
// is the same as none, so it may be forgotten.
func fullAfter(l Limit) time.Duration {
	return time.Duration(math.Ceil(float64(l.Burst) / l.Rate * float64(time.Second)))
}
