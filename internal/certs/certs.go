// Package certs loads TLS certificates from PEM files, and reloads a
// server's certificate when its files change on disk, so a rotated
// certificate is served without a restart.
package certs

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// LoadPool reads a PEM file of CA certificates.
func LoadPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// DefaultCheckEvery is how often a Reloader looks at its files by default.
const DefaultCheckEvery = 2 * time.Second

// Reloader serves a certificate and key pair from files. At most every
// CheckEvery, a handshake makes it look at the files' size and
// modification time; when either changed it loads the pair again. A pair
// that does not load (a rotation half done: new certificate, old key)
// keeps the previous one in service, and is retried at the next check.
// Safe for concurrent use; it holds no goroutine, so it needs no closing.
type Reloader struct {
	certFile, keyFile string
	every             time.Duration
	log               *slog.Logger

	cert    atomic.Pointer[tls.Certificate]
	checked atomic.Int64 // unix nanoseconds of the last look at the files
	mu      sync.Mutex   // held by the one goroutine looking
	stamp   [2]stamp     // of the files the served pair came from; under mu
}

type stamp struct {
	size    int64
	modTime time.Time
}

// NewReloader loads the pair once, and fails if it does not load.
// checkEvery <= 0 means DefaultCheckEvery; log may be nil.
func NewReloader(certFile, keyFile string, checkEvery time.Duration, log *slog.Logger) (*Reloader, error) {
	if checkEvery <= 0 {
		checkEvery = DefaultCheckEvery
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Reloader{certFile: certFile, keyFile: keyFile, every: checkEvery, log: log}
	st, err := r.stamps()
	if err != nil {
		return nil, err
	}
	if err := r.load(st); err != nil {
		return nil, err
	}
	r.checked.Store(time.Now().UnixNano())
	return r, nil
}

// GetCertificate is for tls.Config.GetCertificate.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	now := time.Now().UnixNano()
	if now-r.checked.Load() >= int64(r.every) && r.mu.TryLock() {
		// Handshakes meanwhile go on with the current pair.
		r.checked.Store(now)
		r.check()
		r.mu.Unlock()
	}
	return r.cert.Load(), nil
}

// check reloads the pair if its files changed. r.mu is held.
func (r *Reloader) check() {
	st, err := r.stamps()
	if err != nil {
		r.log.Warn("TLS certificate files unreadable; serving the loaded certificate", "err", err)
		return
	}
	if st == r.stamp {
		return
	}
	if err := r.load(st); err != nil {
		r.log.Warn("TLS certificate changed but does not load; serving the previous one", "err", err)
		return
	}
	r.log.Info("TLS certificate reloaded", "certFile", r.certFile)
}

func (r *Reloader) load(st [2]stamp) error {
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return err
	}
	r.cert.Store(&c)
	r.stamp = st
	return nil
}

func (r *Reloader) stamps() ([2]stamp, error) {
	var st [2]stamp
	for i, f := range [2]string{r.certFile, r.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return st, err
		}
		st[i] = stamp{size: fi.Size(), modTime: fi.ModTime()}
	}
	return st, nil
}
