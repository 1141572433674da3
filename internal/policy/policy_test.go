package policy

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/vmcp/vmcp/internal/identity"
)

func TestMatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"*", "anything", true},
		{"read_file", "read_file", true},
		{"read_file", "read_files", false},
		{"files_*", "files_read", true},
		{"files_*", "other_read", false},
		{"*_delete", "files_delete", true},
		{"file://*/secret*", "file://tmp/a/secret.txt", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"a*a", "a", false},
	} {
		if got := Match(tc.pattern, tc.name); got != tc.want {
			t.Errorf("match(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
}

func alice() *identity.Identity {
	return &identity.Identity{Issuer: "https://idp", Subject: "alice", Claims: map[string]any{"groups": []any{"admin"}}, Scopes: []string{"mcp"}}
}

func bob() *identity.Identity {
	return &identity.Identity{Issuer: "https://idp", Subject: "bob", Claims: map[string]any{"groups": []any{"dev"}}}
}

func TestDecide(t *testing.T) {
	t.Parallel()
	set, err := New([]Rule{
		{Name: "admins", Allow: true, When: `has(claims.groups) && "admin" in claims.groups`},
		{Name: "no-delete", Allow: false, Tools: []string{"*delete*"}},
		{Name: "tmp-only", Allow: true, Tools: []string{"files_read"}, When: `arguments.path.startsWith("/tmp/")`},
		{Name: "everyone-echo", Allow: true, Tools: []string{"echo"}, Backends: []string{"demo"}},
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		id   *identity.Identity
		it   Item
		args map[string]any
		want Decision
	}{
		{"admin may delete", alice(), Item{Tool, "files_delete", "files"}, nil, Decision{true, "admins"}},
		{"dev may not delete", bob(), Item{Tool, "files_delete", "files"}, nil, Decision{false, "no-delete"}},
		{"dev reads /tmp", bob(), Item{Tool, "files_read", "files"}, map[string]any{"path": "/tmp/x"}, Decision{true, "tmp-only"}},
		{"dev may not read /etc", bob(), Item{Tool, "files_read", "files"}, map[string]any{"path": "/etc/passwd"}, Decision{false, "default"}},
		{"missing argument fails closed", bob(), Item{Tool, "files_read", "files"}, map[string]any{}, Decision{false, "default"}},
		{"echo on its backend", nil, Item{Tool, "echo", "demo"}, nil, Decision{true, "everyone-echo"}},
		{"echo elsewhere", nil, Item{Tool, "echo", "other"}, nil, Decision{false, "default"}},
		{"anonymous has no claims", nil, Item{Prompt, "greet", "demo"}, nil, Decision{false, "default"}},
	} {
		if got := set.Decide(ctx, tc.id, tc.it, tc.args); got != tc.want {
			t.Errorf("%s: Decide = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestStatic(t *testing.T) {
	t.Parallel()
	set, err := New([]Rule{
		{Name: "no-etc", Allow: false, Tools: []string{"files_read"}, When: `arguments.path.startsWith("/etc")`},
		{Name: "devs", Allow: true, When: `subject == "bob"`},
		{Name: "tmp-only", Allow: true, Tools: []string{"files_write"}, When: `arguments.path.startsWith("/tmp/")`},
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		id   *identity.Identity
		it   Item
		want Verdict
	}{
		{"an argument rule before: visible, decided per call", bob(), Item{Tool, "files_read", "files"}, Verdict{Visible: true, Final: false, Decision: Decision{true, "devs"}}},
		{"no argument rule: final", bob(), Item{Tool, "echo", "demo"}, Verdict{Visible: true, Final: true, Decision: Decision{true, "devs"}}},
		{"an allow that reads arguments: visible", alice(), Item{Tool, "files_write", "files"}, Verdict{Visible: true, Final: false, Decision: Decision{true, "tmp-only"}}},
		{"hidden whatever the arguments", alice(), Item{Tool, "files_read", "files"}, Verdict{Visible: false, Final: false, Decision: Decision{false, "default"}}},
		{"hidden and final", alice(), Item{Tool, "echo", "demo"}, Verdict{Visible: false, Final: true, Decision: Decision{false, "default"}}},
	} {
		if got := set.Static(ctx, tc.id, tc.it); got != tc.want {
			t.Errorf("%s: Static = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestDefaultAllow(t *testing.T) {
	t.Parallel()
	set, err := New([]Rule{{Allow: false, Tools: []string{"danger"}}}, true)
	if err != nil {
		t.Fatal(err)
	}
	if d := set.Decide(context.Background(), nil, Item{Tool, "safe", "b"}, nil); !d.Allow || d.Rule != "default" {
		t.Errorf("safe: %+v", d)
	}
	if d := set.Decide(context.Background(), nil, Item{Tool, "danger", "b"}, nil); d.Allow || d.Rule != "policies[0]" {
		t.Errorf("danger: %+v", d)
	}
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		rule      Rule
		field     string
		errSubstr string
	}{
		{Rule{When: `subject ==`}, "when", "Syntax error"},
		{Rule{When: `subject`}, "when", "must be a bool"},
		{Rule{When: `nosuch == "x"`}, "when", "undeclared reference"},
		{Rule{Tools: []string{""}}, "tools[0]", "must not be empty"},
	} {
		_, err := New([]Rule{{Allow: true}, tc.rule}, false)
		var pe *Error
		if !errors.As(err, &pe) || pe.Index != 1 || pe.Field != tc.field || !strings.Contains(err.Error(), tc.errSubstr) {
			t.Errorf("rule %+v: err = %v, want policies[1].%s containing %q", tc.rule, err, tc.field, tc.errSubstr)
		}
		if tc.field == "when" && Check(tc.rule.When) == nil {
			t.Errorf("Check(%q) = nil", tc.rule.When)
		}
	}
}
