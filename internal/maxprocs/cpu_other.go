//go:build !unix

package maxprocs

import "time"

// processCPU reports false: there is no CPU time to adapt to here.
func processCPU() (time.Duration, bool) { return 0, false }
