package main

import (
	"bufio"
	"debug/elf"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestImageBuildStage runs the Dockerfile's build stage without Docker
// (this machine may have no daemon): the files .dockerignore lets into the
// build context, copied as the stage's COPY lines say, built by the stage's
// own RUN line with its build args. The result must be a static binary
// whose `vmcp version` names those args. It fails when a change makes the
// image unbuildable: a package outside the copied directories, a file the
// build needs that .dockerignore leaves out (a test fixture, testdata), or
// cgo.
func TestImageBuildStage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds vmcp")
	}
	if runtime.GOOS != "linux" {
		t.Skip("the image is linux")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	stage := buildStage(t, filepath.Join(root, "Dockerfile"))
	ignore := readIgnore(t, filepath.Join(root, ".dockerignore"))

	ctxDir, work := t.TempDir(), t.TempDir()
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			if d.Name() == ".git" || d.Name() == "node_modules" {
				return filepath.SkipDir
			}
			return nil
		}
		if rel == "." || ignore.excludes(filepath.ToSlash(rel)) {
			return nil
		}
		return copyFile(p, filepath.Join(ctxDir, rel))
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range stage.copies {
		for _, src := range c.srcs {
			if err := copyTree(filepath.Join(ctxDir, src), filepath.Join(work, c.dst, dstName(c, src))); err != nil {
				t.Fatalf("COPY %s: %v (is it in the build context? see .dockerignore)", src, err)
			}
		}
	}

	out := t.TempDir()
	args := map[string]string{"VERSION": "v9.8.7-image", "COMMIT": "c0ffee", "DATE": "2026-12-02T00:00:00Z"}
	cmd := exec.Command("sh", "-c", strings.ReplaceAll(stage.build, "/out/", out+"/"))
	cmd.Dir = work
	cmd.Env = os.Environ()
	for k, v := range args {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the build stage's RUN failed: %v\n%s", err, b)
	}
	bin := filepath.Join(out, "vmcp")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary is dynamically linked: distroless/static has no libc")
		}
	}
	v, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("vmcp version: %v\n%s", err, v)
	}
	for _, want := range args {
		if !strings.Contains(string(v), want) {
			t.Errorf("vmcp version says\n%s\nwant %s from the build args", v, want)
		}
	}
}

// stage is what the test takes from the Dockerfile's build stage: its
// COPY lines and the RUN line that runs go build.
type stage struct {
	copies []copyLine
	build  string
}

type copyLine struct {
	srcs []string
	dst  string
}

// dstName is where src goes under c.dst: COPY of several sources, or to a
// directory ending in "/", keeps each source's name; one source to a plain
// destination becomes it.
func dstName(c copyLine, src string) string {
	if len(c.srcs) > 1 || strings.HasSuffix(c.dst, "/") {
		return path.Base(src)
	}
	return ""
}

// buildStage reads the first stage of a Dockerfile, joining continued
// lines. It knows the instructions this repository's Dockerfile uses.
func buildStage(t *testing.T, file string) stage {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var st stage
	froms := 0
	var line string
	for raw := range strings.SplitSeq(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(raw), "#") {
			continue
		}
		if s, ok := strings.CutSuffix(raw, "\\"); ok {
			line += s + " "
			continue
		}
		line += raw
		fields := strings.Fields(line)
		line = ""
		if len(fields) == 0 {
			continue
		}
		switch strings.ToUpper(fields[0]) {
		case "FROM":
			froms++
		case "COPY":
			if froms == 1 && len(fields) >= 3 && !strings.HasPrefix(fields[1], "--") {
				st.copies = append(st.copies, copyLine{srcs: fields[1 : len(fields)-1], dst: fields[len(fields)-1]})
			}
		case "RUN":
			if froms == 1 && strings.Contains(strings.Join(fields, " "), "go build") {
				st.build = strings.Join(fields[1:], " ")
			}
		}
	}
	if froms < 2 || st.build == "" || len(st.copies) == 0 {
		t.Fatalf("%s: want a build stage with COPY and a RUN of go build, then a final stage", file)
	}
	return st
}

// ignoreRules are .dockerignore's patterns in order; the last that
// matches a path decides, and a pattern that matches a directory matches
// everything under it.
type ignoreRules []struct {
	pattern string
	include bool
}

func readIgnore(t *testing.T, file string) ignoreRules {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rules ignoreRules
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		r := struct {
			pattern string
			include bool
		}{}
		r.pattern, r.include = strings.CutPrefix(l, "!")
		r.pattern = strings.TrimSuffix(r.pattern, "/")
		rules = append(rules, r)
	}
	return rules
}

func (rules ignoreRules) excludes(rel string) bool {
	excluded := false
	parts := strings.Split(rel, "/")
	for _, r := range rules {
		pat := strings.Split(r.pattern, "/")
		// The path itself or any directory above it.
		for n := 1; n <= len(parts); n++ {
			if globMatch(pat, parts[:n]) {
				excluded = !r.include
				break
			}
		}
	}
	return excluded
}

// globMatch matches path segments against pattern segments, where "**"
// stands for any number of segments.
func globMatch(pat, parts []string) bool {
	if len(pat) == 0 {
		return len(parts) == 0
	}
	if pat[0] == "**" {
		for i := 0; i <= len(parts); i++ {
			if globMatch(pat[1:], parts[i:]) {
				return true
			}
		}
		return false
	}
	if len(parts) == 0 {
		return false
	}
	if ok, _ := path.Match(pat[0], parts[0]); !ok {
		return false
	}
	return globMatch(pat[1:], parts[1:])
}

func copyTree(src, dst string) error {
	info, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		return copyFile(src, dst)
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		return copyFile(p, filepath.Join(dst, rel))
	})
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}
