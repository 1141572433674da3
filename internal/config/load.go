package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is one problem in a config, located by line and field path.
//
// Parse and Load return either a single *Error or several joined with
// errors.Join; use errors.As to get at them.
type Error struct {
	File  string // set by Load; empty from Parse
	Line  int    // 1-based; 0 when the problem has no single place (a missing key)
	Field string // path such as "backends[1].transport"; empty for file-level problems
	Msg   string
}

// Error formats e as "line N: field: msg", or "file:N: field: msg" when File
// is set. Parts that are unknown are left out.
func (e *Error) Error() string {
	var b bytes.Buffer
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		fmt.Fprintf(&b, "%s: ", e.File)
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Option configures Load and Parse.
type Option func(*options)

type options struct {
	lookupEnv func(string) (string, bool)
}

// WithLookupEnv sets the function that resolves ${NAME} references. The
// default, and what nil restores, is os.LookupEnv.
func WithLookupEnv(f func(string) (string, bool)) Option {
	return func(o *options) { o.lookupEnv = f }
}

// Load reads the file at path and parses it with Parse. Every *Error it
// returns carries path in its File field, so errors read
// "vmcp.yaml:7: backends[1].transport: ...". A file that cannot be read
// yields the wrapped os error (errors.Is(err, fs.ErrNotExist) works).
func Load(path string, opts ...Option) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := Parse(data, opts...)
	if err != nil {
		var errs []*Error
		collect(err, &errs)
		for _, e := range errs {
			e.File = path
		}
		return nil, err
	}
	return cfg, nil
}

// collect appends every *Error inside err, a single one or a join.
func collect(err error, out *[]*Error) {
	switch e := err.(type) {
	case *Error:
		*out = append(*out, e)
	case interface{ Unwrap() []error }:
		for _, inner := range e.Unwrap() {
			collect(inner, out)
		}
	}
}

// Parse decodes a YAML config, applies defaults, expands ${NAME} references
// and validates the result. It reports every problem it finds, not just the
// first, sorted by line.
func Parse(data []byte, opts ...Option) (*Config, error) {
	o := options{}
	for _, opt := range opts {
		opt(&o)
	}
	if o.lookupEnv == nil {
		o.lookupEnv = os.LookupEnv
	}

	root, err := parseYAML(data)
	if err != nil {
		return nil, err
	}
	cfg := Default()
	d := &decoder{lookupEnv: o.lookupEnv, pos: map[string]position{}, invalid: map[string]bool{}}
	d.decodeStruct(root, reflectValue(cfg), "")
	validate(cfg, d)
	if len(d.errs) > 0 {
		return nil, d.err()
	}
	completePriorityOrder(cfg)
	return cfg, nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseYAML returns the root mapping of the single document in data.
func parseYAML(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{Msg: "config is empty"}
		}
		return nil, yamlError(err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, &Error{Line: extra.Line, Msg: "more than one YAML document; a config is a single document"}
	case !errors.Is(err, io.EOF):
		return nil, yamlError(err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil, &Error{Msg: "config is empty"}
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Error{Line: root.Line, Msg: "config must be a mapping of keys such as listen and backends, not " + kindName(root)}
	}
	return root, nil
}

// yamlError keeps yaml's line number as our Line. yaml.v3 reports syntax
// errors only as text, "yaml: line N: msg".
func yamlError(err error) error {
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return &Error{Line: n, Msg: "invalid YAML: " + m[2]}
	}
	return &Error{Msg: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
}

// err joins d.errs in line order; problems without a line come last.
func (d *decoder) err() error {
	order := func(e *Error) int {
		if e.Line == 0 {
			return math.MaxInt
		}
		return e.Line
	}
	slices.SortStableFunc(d.errs, func(a, b *Error) int { return cmp.Compare(order(a), order(b)) })
	if len(d.errs) == 1 {
		return d.errs[0]
	}
	errs := make([]error, len(d.errs))
	for i, e := range d.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}
