package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// position records where a decoded value came from, so validation can name
// its line, and whether it came from the environment, so no error ever
// quotes it.
type position struct {
	line    int
	fromEnv bool
	raw     string // the source text, ${NAME} unexpanded; set when fromEnv
}

// decoder walks a yaml.Node tree into Config's types by their yaml tags.
// Unlike yaml's own decoder it keeps going after an error, knows every
// line, rejects unknown keys and expands the environment.
type decoder struct {
	lookupEnv func(string) (string, bool)
	pos       map[string]position // by field path
	invalid   map[string]bool     // paths whose value could not be decoded
	errs      []*Error
}

// defaulter is implemented by element types (Backend, Keepalive) whose
// zero value is not their default; decode calls it on each new element.
type defaulter interface{ setDefaults() }

var durationType = reflect.TypeFor[Duration]()

func reflectValue(cfg *Config) reflect.Value { return reflect.ValueOf(cfg).Elem() }

func (d *decoder) errorf(line int, field, format string, args ...any) {
	d.errs = append(d.errs, &Error{Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// reject reports a value that could not be decoded. The field keeps its
// default, and validation stays quiet about it and everything below it,
// so one mistake gives one error.
func (d *decoder) reject(n *yaml.Node, field, format string, args ...any) {
	d.invalid[field] = true
	d.errorf(n.Line, field, format, args...)
}

// decode stores n into the settable v. A null node, or one with an error,
// leaves v as it was, which is its default.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	n = resolve(n)
	d.pos[path] = position{line: n.Line}
	if isNull(n) {
		return
	}
	if v.Type() == durationType {
		d.decodeDuration(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.String:
		if s, ok := d.scalar(n, path, "a string"); ok {
			v.SetString(s)
		}
	case reflect.Bool:
		s, ok := d.scalar(n, path, "true or false")
		if !ok {
			return
		}
		switch strings.ToLower(s) {
		case "true":
			v.SetBool(true)
		case "false":
			v.SetBool(false)
		default:
			d.reject(n, path, "must be true or false (got %s)", d.display(path, s))
		}
	case reflect.Int, reflect.Int64:
		d.decodeInt(n, v, path)
	case reflect.Float64:
		s, ok := d.scalar(n, path, "a number")
		if !ok {
			return
		}
		if f, err := strconv.ParseFloat(s, 64); err != nil {
			d.reject(n, path, "must be a number (got %s)", d.display(path, s))
		} else {
			v.SetFloat(f)
		}
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.Pointer:
		p := newElem(v.Type().Elem())
		d.decodeStruct(n, p.Elem(), path)
		v.Set(p)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	default:
		panic("config: no decoder for " + v.Type().String()) // a bug in Config's types
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	n = resolve(n)
	d.pos[path] = position{line: n.Line}
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.reject(n, path, "must be a mapping, not %s", kindName(n))
		return
	}
	fields := make(map[string][]int)
	var known []string
	structFields(v.Type(), nil, fields, &known)
	for _, kv := range d.pairs(n, path) {
		key := kv[0].Value
		field := joinPath(path, key)
		i, ok := fields[key]
		if !ok {
			msg := "unknown field"
			if s := suggest(key, known); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			d.errorf(kv[0].Line, field, "%s", msg)
			continue
		}
		d.decode(kv[1], v.FieldByIndex(i), field)
	}
}

// structFields maps the yaml names of t's fields to their indexes, those
// of a struct field tagged ",inline" as if they were t's own.
func structFields(t reflect.Type, prefix []int, fields map[string][]int, known *[]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		index := append(append([]int(nil), prefix...), i)
		switch {
		case name == "" && opts == "inline" && f.Type.Kind() == reflect.Struct:
			structFields(f.Type, index, fields, known)
		case name != "":
			fields[name] = index
			*known = append(*known, name)
		}
	}
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.reject(n, path, "must be a list, not %s", kindName(n))
		return
	}
	for i, item := range n.Content {
		e := newElem(v.Type().Elem())
		d.decode(item, e.Elem(), fmt.Sprintf("%s[%d]", path, i))
		v.Set(reflect.Append(v, e.Elem()))
	}
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.reject(n, path, "must be a mapping, not %s", kindName(n))
		return
	}
	for _, kv := range d.pairs(n, path) {
		e := newElem(v.Type().Elem())
		d.decode(kv[1], e.Elem(), keyPath(path, kv[0].Value))
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		v.SetMapIndex(reflect.ValueOf(kv[0].Value), e.Elem())
	}
}

func (d *decoder) decodeInt(n *yaml.Node, v reflect.Value, path string) {
	s, ok := d.scalar(n, path, "an integer")
	if !ok {
		return
	}
	i, err := strconv.ParseInt(s, 10, v.Type().Bits())
	switch {
	case errors.Is(err, strconv.ErrRange):
		d.reject(n, path, "out of range (got %s)", d.display(path, s))
	case err != nil:
		d.reject(n, path, "must be an integer (got %s)", d.display(path, s))
	case i < 0:
		d.reject(n, path, "must not be negative (got %s)", d.display(path, s))
	default:
		v.SetInt(i)
	}
}

func (d *decoder) decodeDuration(n *yaml.Node, v reflect.Value, path string) {
	s, ok := d.scalar(n, path, "a duration")
	if !ok {
		return
	}
	t, err := time.ParseDuration(s)
	switch {
	case err != nil:
		d.reject(n, path, "must be a duration such as 30s, 5m or 1h30m (got %s)", d.display(path, s))
	case t < 0:
		d.reject(n, path, "must not be negative (got %s)", d.display(path, s))
	default:
		v.SetInt(int64(t))
	}
}

// scalar returns the expanded text of a scalar node.
func (d *decoder) scalar(n *yaml.Node, path, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.reject(n, path, "must be %s, not %s", want, kindName(n))
		return "", false
	}
	s, fromEnv, err := expand(n.Value, d.lookupEnv)
	if err != nil {
		d.reject(n, path, "%v", err)
		return "", false
	}
	if fromEnv {
		d.pos[path] = position{line: n.Line, fromEnv: true, raw: n.Value}
	}
	return s, true
}

// display quotes a value for an error message. A value that came from the
// environment may be a secret, so it shows the source text instead.
func (d *decoder) display(path, s string) string {
	if p := d.pos[path]; p.fromEnv {
		return strconv.Quote(p.raw)
	}
	return strconv.Quote(s)
}

// pairs returns n's key/value pairs, reporting duplicate and non-string
// keys.
func (d *decoder) pairs(n *yaml.Node, path string) [][2]*yaml.Node {
	out := make([][2]*yaml.Node, 0, len(n.Content)/2)
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k.Line, path, "keys must be strings, not %s", kindName(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			d.errorf(k.Line, path, "merge keys (<<) are not supported")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorf(k.Line, keyPath(path, k.Value), "duplicate key (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, [2]*yaml.Node{k, v})
	}
	return out
}

// newElem returns a pointer to a new value of type t holding t's defaults.
func newElem(t reflect.Type) reflect.Value {
	p := reflect.New(t)
	if df, ok := p.Interface().(defaulter); ok {
		df.setDefaults()
	}
	return p
}

// resolve follows aliases to the anchored node.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.ShortTag() {
	case "!!str":
		return "a string"
	case "!!int", "!!float":
		return "a number"
	case "!!bool":
		return "a boolean"
	case "!!null":
		return "null"
	}
	return "a scalar"
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var simpleKeyRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// keyPath names a map entry: headers.X-Api-Key, or overrides["fs.read"] when
// the key would make the path ambiguous.
func keyPath(path, key string) string {
	if simpleKeyRE.MatchString(key) {
		return joinPath(path, key)
	}
	return path + "[" + strconv.Quote(key) + "]"
}

// suggest returns the known key closest to an unknown one, if it is close
// enough to be a likely typo.
func suggest(key string, known []string) string {
	best, bestDist := "", min(2, max(1, len(key)/4))+1
	for _, k := range known {
		if strings.EqualFold(k, key) {
			return k
		}
		if d := editDistance(strings.ToLower(key), strings.ToLower(k)); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
