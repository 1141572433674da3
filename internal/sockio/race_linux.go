//go:build race

package sockio

import (
	"sync"
	"syscall"
)

// The race detector learns of the order that I/O gives goroutines (a
// write, then the read of what it wrote) from annotations in package
// syscall's Read and Write, which raw system calls skip. In race builds
// only, an empty syscall.Write before each write and an empty
// syscall.Read after each read carry those annotations. They go to
// /dev/null, not the socket, so as not to consume a pending socket error.
var devNull = sync.OnceValue(func() int {
	fd, err := syscall.Open("/dev/null", syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		panic("sockio: race build cannot open /dev/null: " + err.Error())
	}
	return fd
})

func raceRelease() { syscall.Write(devNull(), nil) }

func raceAcquire() { syscall.Read(devNull(), nil) }
