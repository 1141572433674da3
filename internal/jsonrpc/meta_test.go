package jsonrpc

import "testing"

func TestSetMeta(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{`{"content":[]}`, `{"_meta":{"k":1},"content":[]}`},
		{`{"_meta":null,"a":1}`, `{"_meta":{"k":1},"a":1}`},
		{`{"_meta":{"x":"y"}}`, `{"_meta":{"k":1,"x":"y"}}`},
		{`{"_meta":{"k":"old","x":2}}`, `{"_meta":{"k":1,"x":2}}`},
		{`{}`, `{"_meta":{"k":1}}`},
	}
	for _, tt := range tests {
		got, err := SetMeta([]byte(tt.in), "k", []byte("1"))
		if err != nil || string(got) != tt.want {
			t.Errorf("SetMeta(%s) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{`[]`, `{"_meta":[1]}`, `{"_meta":"s"}`} {
		if _, err := SetMeta([]byte(bad), "k", []byte("1")); err == nil {
			t.Errorf("SetMeta(%s) succeeded, want ErrNotObject", bad)
		}
	}
}

func TestDropMeta(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{`{"content":[]}`, `{"content":[]}`},
		{`{"_meta":{"k":{"name":"b"}},"a":1}`, `{"_meta":{},"a":1}`},
		{`{"_meta":{"x":1,"k":2,"y":[3]}}`, `{"_meta":{"x":1,"y":[3]}}`},
		{`{"_meta":{"x":1}}`, `{"_meta":{"x":1}}`},
		{`{"_meta":{"\u006b":2}}`, `{"_meta":{}}`},
	}
	for _, tt := range tests {
		got, err := DropMeta([]byte(tt.in), "k")
		if err != nil || string(got) != tt.want {
			t.Errorf("DropMeta(%s) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	if _, err := DropMeta([]byte(`{"_meta":5}`), "k"); err == nil {
		t.Error("DropMeta of a non-object _meta succeeded")
	}
}
