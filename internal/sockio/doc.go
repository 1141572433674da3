// Package sockio reads and writes TCP connections with raw system calls.
//
// Every read or write through package net enters the Go runtime's system
// call bookkeeping, which also wakes the runtime's monitor thread (sysmon)
// when the process was idle. A proxy goes idle between almost every pair
// of messages, so on hosts where system calls and context switches are
// dear (virtual machines) those wakeups cost as much as the I/O itself:
// profiles of vmcp put two futex and two nanosleep calls per proxied call
// on sysmon's account. A socket in non-blocking mode never blocks in read
// or write, so the bookkeeping buys nothing there.
//
// [Wrap] returns a connection whose Read and Write issue the system call
// directly, through the connection's [syscall.RawConn], and wait for
// readiness in the runtime's network poller as package net does.
// Deadlines, Close and addresses are the wrapped connection's.
package sockio
