package backend

import "testing"

// headID finds the id of a response cut off by the size limit where a
// server wrote it before the result, nothing where it did not, and tells
// a request or notification from a response.
func TestHeadID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		head            string
		id              int64
		found, response bool
	}{
		{`{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"xxxxxxxx`, 7, true, true},
		{`{"id":12,"jsonrpc":"2.0","result":{"content":[{"type":"text","text":"xx`, 12, true, true},
		{`{"result":{"content":[{"type":"text","text":"xxxxxxxx`, 0, false, true}, // the id comes after the result
		{`{"jsonrpc":"2.0","id":"abc","result":{`, 0, false, true},                // not an id vmcp sends
		{`{"jsonrpc":"2.0","method":"notifications/message","params":{"data":"xxxx`, 0, false, false},
		{`{"jsonrpc":"2.0","id":3,"method":"sampling/createMessage","params":{"x`, 0, false, false},
		{``, 0, false, true},
	} {
		id, found, response := headID([]byte(tc.head))
		if id != tc.id || found != tc.found || response != tc.response {
			t.Errorf("headID(%.40q) = %d, %v, %v; want %d, %v, %v", tc.head, id, found, response, tc.id, tc.found, tc.response)
		}
	}
}
