package backend

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestSSEReader(t *testing.T) {
	t.Parallel()
	type ev struct {
		data, id string
		retry    time.Duration
	}
	for _, tc := range []struct {
		name string
		in   string
		want []ev
		err  error
	}{
		{"single", "data: {\"a\":1}\n\n", []ev{{data: `{"a":1}`}}, io.EOF},
		{"crlf and no space", "data:x\r\n\r\n", []ev{{data: "x"}}, io.EOF},
		{"multi-line data", "data: a\ndata: b\n\n", []ev{{data: "a\nb"}}, io.EOF},
		{"id retry event and comment", ": hi\nevent: message\nid: 7\nretry: 250\ndata: x\n\n", []ev{{data: "x", id: "7", retry: 250 * time.Millisecond}}, io.EOF},
		{"priming event without data", "id: p1\ndata:\n\ndata: y\n\n", []ev{{id: "p1"}, {data: "y"}}, io.EOF},
		{"blank lines between events", "\n\ndata: 1\n\n\n\ndata: 2\n\n", []ev{{data: "1"}, {data: "2"}}, io.EOF},
		{"unterminated event is dropped", "data: 1\n\ndata: 2\n", []ev{{data: "1"}}, io.EOF},
		{"cut mid-line", "data: 1\n\ndata: 2", []ev{{data: "1"}}, io.ErrUnexpectedEOF},
		{"long line", "data: " + strings.Repeat("z", 40000) + "\n\n", []ev{{data: strings.Repeat("z", 40000)}}, io.EOF},
		{"too large", "data: " + strings.Repeat("z", 70000) + "\n\n", nil, ErrTooLarge},
		{"too large across lines", strings.Repeat("data: "+strings.Repeat("z", 1000)+"\n", 70) + "\n", nil, ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newSSEReader(64 << 10)
			r.reset(context.Background(), strings.NewReader(tc.in), nil)
			var got []ev
			var err error
			for {
				var e sseEvent
				if e, err = r.next(); err != nil {
					break
				}
				got = append(got, ev{string(e.data), e.id, e.retry})
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("final error = %v, want %v", err, tc.err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("events = %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("event %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}
