package jsonrpc

import (
	"errors"
	"testing"
)

func TestMember(t *testing.T) {
	t.Parallel()
	cases := []struct {
		obj, key, want string
		err            bool
	}{
		{`{"name":"echo","arguments":{"name":"inner"}}`, "name", `"echo"`, false},
		{` { "a" : 1 , "name" : [1,2] } `, "name", `[1,2]`, false},
		{`{"a":1}`, "name", ``, false},
		{`{}`, "name", ``, false},
		{`{"n\u0061me":"x"}`, "name", `"x"`, false},
		{`{"name":"a","name":"b"}`, "name", `"b"`, false},
		{`{"Name":"a"}`, "name", ``, false},
		{`[1]`, "name", ``, true},
		{`null`, "name", ``, true},
		{`{"name":}`, "name", ``, true},
		{`{"name":"a"} x`, "name", ``, true},
		{``, "name", ``, true},
	}
	for _, tc := range cases {
		got, err := Member([]byte(tc.obj), tc.key)
		if tc.err {
			if !errors.Is(err, ErrNotObject) {
				t.Errorf("Member(%s) err = %v, want ErrNotObject", tc.obj, err)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("Member(%s, %q) = %s, %v; want %s", tc.obj, tc.key, got, err, tc.want)
		}
	}
}

func TestSetMember(t *testing.T) {
	t.Parallel()
	cases := []struct{ obj, want string }{
		{`{"name":"b0_echo","arguments":{"name":"keep", "x": 1.50}}`, `{"name":"echo","arguments":{"name":"keep", "x": 1.50}}`},
		{`{ "arguments" : {} , "name" : "p_x" }`, `{ "arguments" : {} , "name" : "echo" }`},
		{`{"name":"a","x":1,"name":"b"}`, `{"name":"echo","x":1,"name":"echo"}`},
		{`{"x":1}`, `{"name":"echo","x":1}`},
		{`{}`, `{"name":"echo"}`},
		{` { } `, ` {"name":"echo" } `},
	}
	for _, tc := range cases {
		got, err := SetMember([]byte(tc.obj), "name", []byte(`"echo"`))
		if err != nil || string(got) != tc.want {
			t.Errorf("SetMember(%s) = %s, %v; want %s", tc.obj, got, err, tc.want)
		}
		if !Valid(got) {
			t.Errorf("SetMember(%s) = %s: not valid JSON", tc.obj, got)
		}
	}
	if _, err := SetMember([]byte(`[1]`), "name", []byte(`1`)); !errors.Is(err, ErrNotObject) {
		t.Errorf("SetMember on an array: err = %v", err)
	}
}

func BenchmarkMember(b *testing.B) {
	params := []byte(`{"name":"b0_echo","arguments":{"text":"hello world 12345"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if v, err := Member(params, "name"); err != nil || v == nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSetMember(b *testing.B) {
	params := []byte(`{"name":"b0_echo","arguments":{"text":"hello world 12345"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SetMember(params, "name", []byte(`"echo"`)); err != nil {
			b.Fatal(err)
		}
	}
}

func TestElements(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want []string
		err  bool
	}{
		{`[]`, nil, false},
		{` [ ] `, nil, false},
		{`[{"name":"a","x":[1,2]}, "s" ,3,null]`, []string{`{"name":"a","x":[1,2]}`, `"s"`, `3`, `null`}, false},
		{`[1,]`, nil, true},
		{`[1 2]`, nil, true},
		{`[1`, nil, true},
		{`{}`, nil, true},
		{`[1] 2`, nil, true},
	}
	for _, tc := range cases {
		got, err := Elements([]byte(tc.in))
		if tc.err {
			if !errors.Is(err, ErrNotArray) {
				t.Errorf("Elements(%s) err = %v, want ErrNotArray", tc.in, err)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("Elements(%s) = %q, %v; want %q", tc.in, got, err, tc.want)
			continue
		}
		for i := range got {
			if string(got[i]) != tc.want[i] {
				t.Errorf("Elements(%s)[%d] = %s, want %s", tc.in, i, got[i], tc.want[i])
			}
		}
	}
}
