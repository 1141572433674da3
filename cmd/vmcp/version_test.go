package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestVersionFromBuildInfo: a plain `go build` in a git checkout reports
// the commit it was built from and that commit's time, with no ldflags.
func TestVersionFromBuildInfo(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..")
	// The go command stamps a checkout whose .git is a directory; a git
	// worktree's .git is a file, and it stamps nothing there.
	if fi, err := os.Stat(filepath.Join(root, ".git")); err != nil || !fi.IsDir() {
		t.Skip("not a plain git checkout (a worktree, or none): the go command stamps no VCS info")
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("no git: %v", err)
	}
	// Built here, not by fixture.Binary: GOFLAGS may say -buildvcs=false,
	// and `go install ./cmd/vmcp` in a checkout stamps by default.
	bin := filepath.Join(t.TempDir(), "vmcp")
	build := exec.Command("go", "build", "-buildvcs=true", "-o", bin, "./cmd/vmcp")
	build.Dir = root
	if b, err := build.CombinedOutput(); err != nil {
		if strings.Contains(string(b), "VCS status") {
			// git refuses the checkout (another owner, say): the go
			// command cannot stamp it, and says so.
			t.Skipf("go build -buildvcs=true: %s", b)
		}
		t.Fatalf("go build: %v\n%s", err, b)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	if !strings.HasPrefix(s, "vmcp ") || !strings.Contains(s, "commit: "+strings.TrimSpace(string(head))) ||
		strings.Contains(s, "date:   unknown") || !strings.Contains(s, "go:     go1.") {
		t.Errorf("vmcp version =\n%s", s)
	}
}

// TestVersionLdflags: -X main.version/commit/date win over the build info.
// Not parallel: it sets the package variables ldflags would.
func TestVersionLdflags(t *testing.T) {
	version, commit, date = "v1.2.3", "abc123", "2026-12-01T00:00:00Z"
	t.Cleanup(func() { version, commit, date = "", "", "" })
	var out bytes.Buffer
	if code := run([]string{"version"}, &out, &out); code != 0 {
		t.Fatal(code)
	}
	want := "vmcp v1.2.3\ncommit: abc123\ndate:   2026-12-01T00:00:00Z\n"
	if !strings.HasPrefix(out.String(), want) {
		t.Errorf("got\n%s\nwant prefix\n%s", out.String(), want)
	}
}
