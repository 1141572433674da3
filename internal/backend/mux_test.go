package backend

import "testing"

// headID finds the id of a response cut off by the size limit where a
// server wrote it before the result, and nothing where it did not.
func TestHeadID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		head   string
		id     int64
		wantOK bool
	}{
		{`{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"xxxxxxxx`, 7, true},
		{`{"id":12,"jsonrpc":"2.0","result":{"content":[{"type":"text","text":"xx`, 12, true},
		{`{"result":{"content":[{"type":"text","text":"xxxxxxxx`, 0, false}, // the id comes after the result
		{`{"jsonrpc":"2.0","id":"abc","result":{`, 0, false},                // not an id vmcp sends
		{`[{"jsonrpc":"2.0","id":1}`, 0, false},
		{``, 0, false},
	} {
		if id, ok := headID([]byte(tc.head)); id != tc.id || ok != tc.wantOK {
			t.Errorf("headID(%.30q) = %d, %v; want %d, %v", tc.head, id, ok, tc.id, tc.wantOK)
		}
	}
}
