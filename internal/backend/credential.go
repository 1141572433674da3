package backend

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// credentialError is a failure to obtain a request's bearer token. It is
// vmcp's problem (or its token endpoint's), not the backend's: it is not
// ErrUnavailable.
type credentialError struct{ err error }

func (e *credentialError) Error() string { return "getting the credential: " + e.err.Error() }
func (e *credentialError) Unwrap() error { return e.err }

// withToken returns h with "Authorization: Bearer <token>" from ts, or h
// itself when ts is nil. h is shared by the client's requests and only
// read, so a token goes into a copy: each request gets the token that is
// current when it is sent.
func withToken(ctx context.Context, ts TokenSource, h http.Header) (http.Header, error) {
	if ts == nil {
		return h, nil
	}
	tok, err := ts.Token(ctx)
	if err != nil {
		return nil, &credentialError{err}
	}
	if !validHeader("Authorization", tok) {
		return nil, &credentialError{errors.New("the token cannot be sent in a header")}
	}
	out := make(http.Header, len(h)+1)
	for k, v := range h {
		out[k] = v
	}
	out["Authorization"] = []string{"Bearer " + tok}
	return out, nil
}

// refused maps a 401 or 403: the backend refused vmcp's credential. Its
// body is not read into the error; it may quote the credential.
func refused(status int) error {
	return fmt.Errorf("%w (HTTP %d)", ErrUnauthorized, status)
}

func isRefusal(status int) bool {
	return status == http.StatusUnauthorized || status == http.StatusForbidden
}

type tokenKey struct{}

// contextWithToken carries a client's TokenSource to the requests the
// go-sdk's SSE transport sends on its behalf.
func contextWithToken(ctx context.Context, ts TokenSource) context.Context {
	if ts == nil {
		return ctx
	}
	return context.WithValue(ctx, tokenKey{}, ts)
}

func tokenFrom(ctx context.Context) TokenSource {
	ts, _ := ctx.Value(tokenKey{}).(TokenSource)
	return ts
}
