package config

import "strings"

// Audit is the audit trail: one JSON object per line, per event, in a
// file opened for appending or on standard output. It never holds a
// secret, a token or a session ID; a session is named by a keyed hash of
// its ID.
type Audit struct {
	// Path is the file the events are appended to, created with mode
	// 0600 if need be; "-" is standard output. vmcp refuses to start if
	// it cannot write there.
	Path string `yaml:"path"`
	// HashKeyEnv names an environment variable holding the key of the
	// session hash, so that replicas and restarts name a session alike;
	// unset: a random key per process.
	HashKeyEnv string `yaml:"hashKeyEnv"`
	// Arguments adds each call's arguments to its event, with configured
	// secret values redacted. Off by default: arguments are the caller's
	// data and may hold anything.
	Arguments bool `yaml:"arguments"`
}

// Stdout is the audit path that means standard output.
const Stdout = "-"

func (v *validator) audit(a *Audit) {
	const p = "audit"
	switch {
	case a.Path == "":
		v.fail(p+".path", `required: a file to append JSON lines to, or "-" for standard output`)
	case strings.ContainsRune(a.Path, 0):
		v.fail(p+".path", "must be a file path")
	}
	if a.HashKeyEnv != "" && !envNameRE.MatchString(a.HashKeyEnv) {
		v.fail(p+".hashKeyEnv", "must be an environment variable name (got %s)", v.got(p+".hashKeyEnv", a.HashKeyEnv))
	}
}
