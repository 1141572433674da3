package guard

import (
	"errors"
	"testing"
)

func TestDecodeArguments(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		raw     string
		wantErr error // nil: decodes
		bad     bool  // some other error
	}{
		{raw: ``},
		{raw: `null`},
		{raw: `{"path":"/tmp/x","n":1,"opts":{"a":[{"b":1},{"b":2}]}}`},
		{raw: `{"path":"/tmp/x","PATH":"/etc"}`, wantErr: errDuplicateKey},
		{raw: `{"path":"/tmp/x","path":"/etc"}`, wantErr: errDuplicateKey},
		{raw: `{"opts":{"Mode":"r","mode":"w"}}`, wantErr: errDuplicateKey},
		{raw: `{"list":[{"k":1,"K":2}]}`, wantErr: errDuplicateKey},
		{raw: `[1,2]`, bad: true},
		{raw: `{"a":`, bad: true},
	} {
		_, err := decodeArguments([]byte(tc.raw))
		switch {
		case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
			t.Errorf("%s: err = %v, want %v", tc.raw, err, tc.wantErr)
		case tc.bad && err == nil:
			t.Errorf("%s: decoded", tc.raw)
		case tc.wantErr == nil && !tc.bad && err != nil:
			t.Errorf("%s: %v", tc.raw, err)
		}
	}
}
