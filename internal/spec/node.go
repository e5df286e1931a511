package spec

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// YAML tags as yaml.v3 resolves them.
const (
	tagStr   = "!!str"
	tagInt   = "!!int"
	tagFloat = "!!float"
	tagBool  = "!!bool"
	tagNull  = "!!null"
	tagMerge = "!!merge"
)

// decoder walks a yaml.Node tree into the model. Walking nodes by hand,
// instead of unmarshalling into tagged structs, is what lets every error
// carry the line and the dotted field path, and lets unknown keys and wrong
// types be errors rather than silently ignored or coerced.
type decoder struct {
	file string
	// lines records where each field path was written, so checks that run
	// after decoding (Validate) can still point at a line.
	lines map[string]int
	// visited counts keys and list items decoded. Aliases and merge keys
	// let a small file expand into a huge tree (the "billion laughs"), and
	// the daemon parses specs sent over its API, so decoding has a budget.
	visited int
}

// maxVisits is the decoding budget: far above any real spec (which has a
// few hundred values) and far below what would stall the daemon.
const maxVisits = 100_000

// visit spends count units of the budget at node n.
func (d *decoder) visit(n *yaml.Node, count int) error {
	d.visited += count
	if d.visited > maxVisits {
		return d.errAt(n, "", "the spec is too large once its aliases and merge keys are expanded (over %d values)", maxVisits)
	}
	return nil
}

// errAt builds an *Error at node n.
func (d *decoder) errAt(n *yaml.Node, field, format string, args ...any) *Error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &Error{File: d.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// mark records the line of a field path the first time it is seen.
func (d *decoder) mark(field string, n *yaml.Node) {
	if _, ok := d.lines[field]; !ok && n != nil {
		d.lines[field] = n.Line
	}
}

// entry is one key: value pair of a mapping, after merge keys are expanded.
type entry struct {
	key     string
	keyNode *yaml.Node
	val     *yaml.Node
}

// join builds a dotted field path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// index builds the field path of a list item.
func index(path string, i int) string {
	return fmt.Sprintf("%s[%d]", path, i)
}

// deref follows aliases (*name) to the anchored node they stand for.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// isNull reports whether n is an absent value: `key:` with nothing after it,
// or ~ / null. Maps and lists treat it as empty, because a block whose items
// are all commented out is still a block.
func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == yaml.ScalarNode && n.ShortTag() == tagNull
}

// describe names a node's YAML type for "must be X, not Y" messages, so the
// user sees what the parser made of their value (e.g. yes is a string here).
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case tagStr:
			return "a string"
		case tagInt:
			return "an integer"
		case tagFloat:
			return "a number"
		case tagBool:
			return "a boolean"
		case tagNull:
			return "empty"
		}
		return fmt.Sprintf("a %s value", strings.TrimLeft(n.ShortTag(), "!"))
	}
	return "an unsupported node"
}

// mapping returns the entries of a mapping in file order. allowed lists the
// keys a schema mapping accepts, in the order the error message shows them;
// nil means any key (env, services, sidecars...). Duplicate keys are errors
// because YAML parsers disagree on which one wins.
func (d *decoder) mapping(n *yaml.Node, path string, allowed []string) ([]entry, error) {
	n = deref(n)
	if isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, d.errAt(n, path, "must be a mapping, not %s", describe(n))
	}
	entries, err := d.entries(n, path, map[*yaml.Node]bool{})
	if err != nil {
		return nil, err
	}
	if allowed != nil {
		for _, e := range entries {
			if !slices.Contains(allowed, e.key) {
				return nil, d.errAt(e.keyNode, path, "unknown key %q; allowed: %s", e.key, strings.Join(allowed, ", "))
			}
		}
	}
	return entries, nil
}

// entries flattens a mapping node, expanding YAML merge keys (<<: *base)
// in place: explicit keys win over merged ones, and earlier merge sources
// over later ones, as the YAML merge-key spec says. seen guards against a
// mapping that merges itself.
func (d *decoder) entries(n *yaml.Node, path string, seen map[*yaml.Node]bool) ([]entry, error) {
	if seen[n] {
		return nil, d.errAt(n, path, "merge key (<<) refers to the mapping it is in")
	}
	seen[n] = true
	defer delete(seen, n)
	if err := d.visit(n, len(n.Content)/2); err != nil {
		return nil, err
	}

	explicit := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := deref(n.Content[i])
		if isMergeKey(k) {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			return nil, d.errAt(k, path, "keys must be strings, not %s", describe(k))
		}
		if strings.ContainsRune(k.Value, 0) {
			return nil, d.errAt(k, path, "a key %s", msgNUL)
		}
		if first, dup := explicit[k.Value]; dup {
			return nil, d.errAt(k, path, "duplicate key %q (first at line %d)", k.Value, first.Line)
		}
		explicit[k.Value] = k
	}

	var out []entry
	merged := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if !isMergeKey(k) {
			out = append(out, entry{key: k.Value, keyNode: k, val: v})
			continue
		}
		srcs, err := d.mergeSources(k, v, path)
		if err != nil {
			return nil, err
		}
		for _, src := range srcs {
			sub, err := d.entries(src, path, seen)
			if err != nil {
				return nil, err
			}
			for _, e := range sub {
				if explicit[e.key] != nil || merged[e.key] {
					continue
				}
				merged[e.key] = true
				out = append(out, e)
			}
		}
	}
	return out, nil
}

func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == tagMerge
}

// mergeSources returns the mappings a merge key pulls in: one mapping, or a
// list of them.
func (d *decoder) mergeSources(k, v *yaml.Node, path string) ([]*yaml.Node, error) {
	v = deref(v)
	if v.Kind == yaml.MappingNode {
		return []*yaml.Node{v}, nil
	}
	if v.Kind == yaml.SequenceNode {
		srcs := make([]*yaml.Node, 0, len(v.Content))
		for _, item := range v.Content {
			item = deref(item)
			if item.Kind != yaml.MappingNode {
				return nil, d.errAt(item, path, "merge key (<<) takes a mapping or a list of mappings, not %s", describe(item))
			}
			srcs = append(srcs, item)
		}
		return srcs, nil
	}
	return nil, d.errAt(k, path, "merge key (<<) takes a mapping or a list of mappings, not %s", describe(v))
}

// str decodes a string. Only YAML strings are accepted: a number or a
// boolean where a string belongs is usually a mistake worth quoting.
func (d *decoder) str(n *yaml.Node, path string) (string, error) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode || n.ShortTag() != tagStr {
		return "", d.errAt(n, path, "must be a string, not %s", describe(n))
	}
	if strings.ContainsRune(n.Value, 0) {
		return "", d.errAt(n, path, "%s", msgNUL)
	}
	return n.Value, nil
}

// scalarText decodes a string, number or boolean as the text the user wrote,
// for env values and build args: `DEBUG: 1` means "1", never "1.0".
func (d *decoder) scalarText(n *yaml.Node, path string) (string, error) {
	n = deref(n)
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case tagStr, tagInt, tagFloat, tagBool:
			if strings.ContainsRune(n.Value, 0) {
				return "", d.errAt(n, path, "%s", msgNUL)
			}
			return n.Value, nil
		}
	}
	return "", d.errAt(n, path, `must be a string, number or boolean, not %s (write "" for an empty value)`, describe(n))
}

// integer decodes an integer within [lo, hi]; yaml.v3 already understands
// 0x.., 0o.. and _ separators, so its decoding is reused.
func (d *decoder) integer(n *yaml.Node, path string, lo, hi int) (int, error) {
	n = deref(n)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == tagFloat && digitsRE.MatchString(n.Value) {
		// yaml.v3 calls an integer too big for int64 a float.
		return 0, d.errAt(n, path, "%s", rangeMsg(lo, hi))
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != tagInt {
		return 0, d.errAt(n, path, "must be an integer, not %s", describe(n))
	}
	var v int64
	if err := n.Decode(&v); err != nil || v < int64(lo) || v > int64(hi) {
		return 0, d.errAt(n, path, "%s", rangeMsg(lo, hi))
	}
	return int(v), nil
}

// digitsRE matches an integer literal, whatever its size.
var digitsRE = regexp.MustCompile(`^[-+]?[0-9][0-9_]*$`)

// rangeMsg is the message for an integer outside [lo, hi].
func rangeMsg(lo, hi int) string {
	if hi == math.MaxInt {
		return fmt.Sprintf("must be at least %d", lo)
	}
	return fmt.Sprintf("must be between %d and %d", lo, hi)
}

// number decodes an integer or a decimal number.
func (d *decoder) number(n *yaml.Node, path string) (float64, error) {
	n = deref(n)
	var v float64
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != tagInt && n.ShortTag() != tagFloat) || n.Decode(&v) != nil {
		return 0, d.errAt(n, path, "must be a number, not %s", describe(n))
	}
	return v, nil
}

// boolean decodes true or false. yaml.v3 reads yes/no/on/off as strings, so
// they land here as a type error that names what was written.
func (d *decoder) boolean(n *yaml.Node, path string) (bool, error) {
	n = deref(n)
	var v bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != tagBool || n.Decode(&v) != nil {
		return false, d.errAt(n, path, "must be true or false, not %s", describe(n))
	}
	return v, nil
}

// duration decodes a positive Go duration string such as 1s or 500ms.
func (d *decoder) duration(n *yaml.Node, path string) (time.Duration, error) {
	n = deref(n)
	const hint = "must be a duration like 30s, 500ms or 1m30s"
	if n.Kind != yaml.ScalarNode || n.ShortTag() != tagStr {
		return 0, d.errAt(n, path, "%s, not %s", hint, describe(n))
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		e := d.errAt(n, path, "%s", hint)
		e.Err = err
		return 0, e
	}
	if msg := checkDuration(v); msg != "" {
		return 0, d.errAt(n, path, "%s", msg)
	}
	return v, nil
}

// stringList decodes a list of strings. nonEmpty refuses [] (and an empty
// value) where an empty list would mean nothing, e.g. a command; example
// shows the right shape in the type error.
func (d *decoder) stringList(n *yaml.Node, path, example string, nonEmpty bool) ([]string, error) {
	n = deref(n)
	if isNull(n) {
		line := 0
		if n != nil {
			line = n.Line
		}
		n = &yaml.Node{Kind: yaml.SequenceNode, Line: line}
	}
	if n.Kind != yaml.SequenceNode {
		return nil, d.errAt(n, path, "must be a list of strings, e.g. %s, not %s", example, describe(n))
	}
	if nonEmpty && len(n.Content) == 0 {
		return nil, d.errAt(n, path, "must be a non-empty list of strings")
	}
	if err := d.visit(n, len(n.Content)); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(n.Content))
	for i, item := range n.Content {
		s, err := d.str(item, index(path, i))
		if err != nil {
			return nil, err
		}
		d.mark(index(path, i), item)
		out = append(out, s)
	}
	return out, nil
}

// scalarMap decodes a map of variable names to scalar values (env, build
// args).
func (d *decoder) scalarMap(n *yaml.Node, path string) (map[string]string, error) {
	entries, err := d.mapping(n, path, nil)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(entries))
	for _, e := range entries {
		if msg := checkEnvName(e.key); msg != "" {
			return nil, d.errAt(e.keyNode, path, "%s", msg)
		}
		v, err := d.scalarText(e.val, join(path, e.key))
		if err != nil {
			return nil, err
		}
		d.mark(join(path, e.key), e.keyNode)
		out[e.key] = v
	}
	return out, nil
}
