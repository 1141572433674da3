package authn

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/identity"
)

var lookupEnv = os.LookupEnv

// apiKeyEntry is one configured key: the SHA-256 of the key, never the
// key itself.
type apiKeyEntry struct {
	subject string
	hash    [sha256.Size]byte
}

func apiKeyEntries(keys []config.APIKey) ([]apiKeyEntry, error) {
	out := make([]apiKeyEntry, 0, len(keys))
	for i, k := range keys {
		b, err := hex.DecodeString(k.SHA256)
		if err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("incomingAuth.apiKeys[%d].sha256: must be 64 hex digits", i)
		}
		e := apiKeyEntry{subject: k.Subject}
		copy(e.hash[:], b)
		out = append(out, e)
	}
	return out, nil
}

// HashKey is the hex SHA-256 of an API key: what incomingAuth.apiKeys
// stores (vmcp hash-key prints it).
func HashKey(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])
}

var errUnknownKey = errors.New("unknown API key")

// apiKey finds the subject of the request's key. It compares the key's
// hash with every configured hash in constant time, and always with all
// of them, so timing tells nothing about which keys exist.
func (a *Authenticator) apiKey(r *http.Request) (*identity.Identity, error) {
	k, err := apiKey(r.Header)
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256([]byte(k))
	found := -1
	for i := range a.keys {
		if subtle.ConstantTimeCompare(h[:], a.keys[i].hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return nil, errUnknownKey
	}
	return &identity.Identity{Issuer: identity.IssuerAPIKey, Subject: a.keys[found].subject}, nil
}
