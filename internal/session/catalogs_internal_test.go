package session

import (
	"encoding/json"
	"testing"

	"github.com/vmcp/vmcp/internal/aggregate"
)

func listing(name string, tools ...string) aggregate.Backend {
	b := aggregate.Backend{Name: name}
	for _, t := range tools {
		b.Tools = append(b.Tools, json.RawMessage(`{"name":"`+t+`","inputSchema":{"type":"object"}}`))
	}
	return b
}

func TestCatalogsShareOnlyWhatIsEqual(t *testing.T) {
	c := newCatalogs(aggregate.Options{Strategy: aggregate.StrategyPrefix})
	build := func(ls ...aggregate.Backend) *aggregate.Catalog {
		t.Helper()
		for i := range ls {
			ls[i] = c.intern(ls[i])
		}
		cat, _, err := c.catalog(ls)
		if err != nil {
			t.Fatal(err)
		}
		return cat
	}
	one := build(listing("a", "x"), listing("b", "y"))
	if two := build(listing("a", "x"), listing("b", "y")); two != one {
		t.Error("equal listings got a second catalog")
	}
	other := build(listing("a", "x", "z"), listing("b", "y"))
	if other == one {
		t.Fatal("a different listing got the shared catalog")
	}
	if _, ok := other.ToolRoutes["a_z"]; !ok || len(other.Tools) != 3 {
		t.Errorf("catalog of the changed listing has %d tools, routes %v", len(other.Tools), other.ToolRoutes)
	}
	if _, ok := one.ToolRoutes["a_z"]; ok {
		t.Error("building a new catalog changed the shared one")
	}
	if fewer := build(listing("a", "x")); fewer == one || len(fewer.Tools) != 1 {
		t.Errorf("a session with fewer backends got %d tools", len(fewer.Tools))
	}
}
