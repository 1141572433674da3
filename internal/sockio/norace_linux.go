//go:build !race

package sockio

func raceRelease() {}

func raceAcquire() {}
