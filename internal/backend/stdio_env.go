package backend

import "os"

// baseEnv are the variables of vmcp's own environment that a stdio child
// gets unless its backend sets inheritEnv: what finding and running
// programs needs (npx and uvx need PATH and HOME), and nothing likely to
// be a secret. vmcp's environment holds other backends' tokens and the
// Redis password, which a child could print or send anywhere.
var baseEnv = []string{"PATH", "HOME", "LANG", "TMPDIR"}

// parentEnv is what a stdio child gets of vmcp's environment: baseEnv, or
// all of it with inherit. The backend's configured env is added after it
// and so wins (exec keeps the last value of a duplicate key).
func parentEnv(inherit bool) []string {
	if inherit {
		return os.Environ()
	}
	env := make([]string, 0, len(baseEnv))
	for _, k := range baseEnv {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}
