package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// Set at build time to override what the build info says, for builds
// without VCS stamping (a tarball, -buildvcs=false):
//
//	go build -ldflags "-X main.version=v1.2.3 -X main.commit=abc123 -X main.date=2026-12-01T00:00:00Z" ./cmd/vmcp
var version, commit, date string

// buildVersion is what vmcp says it is.
type buildVersion struct {
	Version  string // the module version, or "dev" from a checkout with no tag
	Commit   string // vcs.revision, "" if unknown
	Date     string // vcs.time (the commit's time) unless set by ldflags
	Modified bool   // the work tree had local changes
	Go       string
}

// readVersion merges the ldflags values over runtime/debug.ReadBuildInfo:
// `go install ./cmd/vmcp` and `go build` in a git checkout stamp the
// module version (a pseudo-version from the latest tag), vcs.revision and
// vcs.time; `go install github.com/vmcp/vmcp/cmd/vmcp@v1.2.3` stamps the
// version only.
func readVersion() buildVersion {
	v := buildVersion{Version: "dev", Go: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if mv := bi.Main.Version; mv != "" && mv != "(devel)" {
			v.Version = mv
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Commit = s.Value
			case "vcs.time":
				v.Date = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	if version != "" {
		v.Version = version
	}
	if commit != "" {
		v.Commit, v.Modified = commit, false
	}
	if date != "" {
		v.Date = date
	}
	return v
}

// String is the one-word version the gateway reports (serverInfo, logs).
func (v buildVersion) String() string { return v.Version }

// printVersion is `vmcp version`: version, commit and date, one per line.
func printVersion(w io.Writer, v buildVersion) {
	c, d := v.Commit, v.Date
	if c == "" {
		c = "unknown"
	} else if v.Modified {
		c += " (modified)"
	}
	if d == "" {
		d = "unknown"
	}
	fmt.Fprintf(w, "vmcp %s\ncommit: %s\ndate:   %s\ngo:     %s\n", v.Version, c, d, v.Go)
}
