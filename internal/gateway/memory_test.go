package gateway

import (
	"slices"
	"testing"
)

func TestReleasePolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		samples []int
		want    []int // indexes of the samples that release
	}{
		{"burst ends", []int{0, 500, 1000, 520, 0, 0, 0}, []int{5}},
		{"sampled mid wind-down", []int{1000, 60, 0, 0}, []int{3}},
		{"wind-down over several samples", []int{1000, 700, 400, 100, 100}, []int{4}},
		{"settles into churn", []int{1000, 300, 310, 290, 305}, []int{2}},
		{"too few ended", []int{0, 150, 60, 60}, nil},
		{"half or more remain", []int{1000, 600, 600}, nil},
		{"second burst", []int{1000, 0, 0, 800, 0, 0}, []int{2, 5}},
		{"growth only", []int{0, 100, 1000, 5000}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var p releasePolicy
			var got []int
			for i, n := range tt.samples {
				if p.observe(n) {
					got = append(got, i)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("samples %v released at %v, want %v", tt.samples, got, tt.want)
			}
		})
	}
}
