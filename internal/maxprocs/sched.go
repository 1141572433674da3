package maxprocs

import (
	"math"
	"runtime/metrics"
	"time"
)

// schedWaits reads the runtime's histogram of how long goroutines waited,
// runnable, before they ran, and reports it interval by interval.
type schedWaits struct {
	sample []metrics.Sample
	prev   []uint64
}

const schedLatencies = "/sched/latencies:seconds"

// p90 returns the 90th percentile of the waits since the previous call, or
// 0 if there were none. Not safe for concurrent use.
func (s *schedWaits) p90() time.Duration {
	if s.sample == nil {
		s.sample = []metrics.Sample{{Name: schedLatencies}}
	}
	metrics.Read(s.sample)
	if s.sample[0].Value.Kind() != metrics.KindFloat64Histogram {
		return 0 // not in this Go version: rely on CPU use alone
	}
	h := s.sample[0].Value.Float64Histogram()
	if len(s.prev) != len(h.Counts) {
		s.prev = make([]uint64, len(h.Counts))
	}
	d := quantile(h.Buckets, h.Counts, s.prev, 0.9)
	copy(s.prev, h.Counts)
	return d
}

// quantile returns the q-quantile of the counts added since prev, as the
// upper bound of the bucket it falls in (the lower bound for the last,
// unbounded bucket). buckets has one more boundary than counts has buckets.
func quantile(buckets []float64, counts, prev []uint64, q float64) time.Duration {
	var total uint64
	for i, c := range counts {
		total += c - prev[i]
	}
	if total == 0 {
		return 0
	}
	want := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i, c := range counts {
		seen += c - prev[i]
		if seen < want {
			continue
		}
		edge := buckets[i+1]
		if math.IsInf(edge, 1) {
			edge = buckets[i]
		}
		return time.Duration(max(edge, 0) * float64(time.Second))
	}
	return 0
}
