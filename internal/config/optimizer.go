package config

// Optimizer puts the catalog behind two tools, find_tool and call_tool
// (package optimizer): a client with hundreds of tools behind vmcp lists
// two, searches the rest by what it means, and calls what it finds.
type Optimizer struct {
	Enabled bool `yaml:"enabled"`
	// DefaultLimit is how many tools find_tool returns when the caller
	// says nothing; 0: 5, or MaxLimit if that is less.
	DefaultLimit int `yaml:"defaultLimit"`
	// MaxLimit is the most find_tool returns, whatever the caller asks;
	// 0: 20, or DefaultLimit if that is more.
	MaxLimit int `yaml:"maxLimit"`
}

// maxFindLimit bounds optimizer.maxLimit: every tool found is a schema in
// the model's context, which is what the optimizer saves.
const maxFindLimit = 100

func (v *validator) optimizer(o *Optimizer) {
	for _, f := range []struct {
		path string
		n    int
	}{{"optimizer.defaultLimit", o.DefaultLimit}, {"optimizer.maxLimit", o.MaxLimit}} {
		if f.n < 0 || f.n > maxFindLimit {
			v.fail(f.path, "must be from 1 to %d, or 0 for the default", maxFindLimit)
		}
	}
	if o.MaxLimit > 0 && o.DefaultLimit > o.MaxLimit {
		v.fail("optimizer.defaultLimit", "must not exceed optimizer.maxLimit (%d)", o.MaxLimit)
	}
}
