package certs_test

import (
	"crypto/x509"
	"os"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/certs"
	"github.com/vmcp/vmcp/internal/certs/certstest"
	"github.com/vmcp/vmcp/internal/fixture"
)

func servedSerial(t *testing.T, r *certs.Reloader) int64 {
	t.Helper()
	c, err := r.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf.SerialNumber.Int64()
}

// TestReloaderKeepsServingThroughAHalfDoneRotation: while only the
// certificate file is new, its key still the old one, the old pair stays
// in service; once both are new, the new pair is served.
func TestReloaderKeepsServingThroughAHalfDoneRotation(t *testing.T) {
	t.Parallel()
	ca := certstest.NewCA(t)
	certFile, keyFile, first := ca.Files(t)
	r, err := certs.NewReloader(certFile, keyFile, time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := servedSerial(t, r); got != first.Serial {
		t.Fatalf("serving %d, want %d", got, first.Serial)
	}
	next := ca.Issue(t)
	if err := os.WriteFile(certFile, next.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond) // past the check interval, so the next handshake looks
	if got := servedSerial(t, r); got != first.Serial {
		t.Fatalf("with a mismatched key, serving %d, want the previous %d", got, first.Serial)
	}
	if err := os.WriteFile(keyFile, next.Key, 0o600); err != nil {
		t.Fatal(err)
	}
	fixture.Eventually(t, "the new pair served", func() bool { return servedSerial(t, r) == next.Serial })
}

func TestNewReloaderFailsOnABadPair(t *testing.T) {
	t.Parallel()
	ca := certstest.NewCA(t)
	certFile, _, _ := ca.Files(t)
	_, otherKey, _ := ca.Files(t)
	if _, err := certs.NewReloader(certFile, otherKey, 0, nil); err == nil {
		t.Fatal("loaded a certificate with another certificate's key")
	}
	if _, err := certs.LoadPool(otherKey); err == nil {
		t.Fatal("a key file loaded as a CA pool")
	}
}
