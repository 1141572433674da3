package identity

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

func TestKeyBindsIssuerAndSubjectNotToken(t *testing.T) {
	t.Parallel()
	a := &Identity{Issuer: "https://idp", Subject: "alice", Token: "t1"}
	refreshed := &Identity{Issuer: "https://idp", Subject: "alice", Token: "t2"}
	other := &Identity{Issuer: "https://other", Subject: "alice", Token: "t1"}
	if a.Key() != refreshed.Key() {
		t.Errorf("a refreshed token changed the key: %q vs %q", a.Key(), refreshed.Key())
	}
	if a.Key() == other.Key() {
		t.Errorf("two issuers' subjects share key %q", a.Key())
	}
	var anon *Identity
	if anon.Key() != "" || (&Identity{}).Key() != "" {
		t.Error("anonymous identities must have an empty key")
	}
}

func TestLogsNeverCarryTheToken(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	id := &Identity{Issuer: "https://idp", Subject: "alice", Token: "secret-token"}
	log.Info("call", "caller", id)
	log.Info("call", "caller", id.String())
	if strings.Contains(buf.String(), "secret-token") {
		t.Fatalf("token in log: %s", buf.String())
	}
	if !strings.Contains(buf.String(), "alice") {
		t.Fatalf("subject missing from log: %s", buf.String())
	}
}

func TestContext(t *testing.T) {
	t.Parallel()
	if FromContext(context.Background()) != nil {
		t.Fatal("empty context has an identity")
	}
	id := &Identity{Issuer: "i", Subject: "s"}
	if got := FromContext(NewContext(context.Background(), id)); got != id {
		t.Fatalf("FromContext = %v", got)
	}
}
