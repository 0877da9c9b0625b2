package inventory

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// This file walks the YAML AST by hand rather than decoding into structs:
// a decoder stops at the first problem and loses positions, and pgfleet
// promises every problem at once with its line and column.

// decoder collects problems while reading one inventory file.
type decoder struct {
	file string
	dir  string // absolute directory of file, for relative paths
	errs Errors
	// warns are lines that are valid but likely a mistake; the inventory
	// keeps them (Inventory.Warnings) when it has no error.
	warns Errors
}

func newDecoder(filename string) (*decoder, error) {
	dir, err := filepath.Abs(filepath.Dir(filename))
	if err != nil {
		return nil, fmt.Errorf("resolve the directory of %s: %w", filename, err)
	}
	return &decoder{file: filename, dir: dir}, nil
}

func (d *decoder) errAt(line, col int, path, msg string) {
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Column: col, Path: path, Msg: msg})
}

// warnf records a warning at node n.
func (d *decoder) warnf(n ast.Node, path, format string, args ...any) {
	line, col := position(n)
	d.warns = append(d.warns, &Error{File: d.file, Line: line, Column: col, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// errorf records a problem at node n.
func (d *decoder) errorf(n ast.Node, path, format string, args ...any) {
	line, col := position(n)
	d.errAt(line, col, path, fmt.Sprintf(format, args...))
}

// position is where a node starts in the file. Block mappings report the
// position of their first ':', so they are placed at their first key.
func position(n ast.Node) (line, col int) {
	if m, ok := n.(*ast.MappingNode); ok && len(m.Values) > 0 && m.Values[0].Key != nil {
		n = m.Values[0].Key
	}
	if n == nil {
		return 1, 1
	}
	tk := n.GetToken()
	if tk == nil || tk.Position == nil || tk.Position.Line < 1 {
		return 1, 1
	}
	return tk.Position.Line, max(tk.Position.Column, 1)
}

// parseYAML parses data into the body of its single document. A nil body
// with no error means an empty document.
func (d *decoder) parseYAML(data []byte) (body ast.Node, ok bool) {
	f, err := parseBytes(data)
	if err != nil {
		var ye yaml.Error
		if errors.As(err, &ye) && ye.GetToken() != nil && ye.GetToken().Position != nil {
			p := ye.GetToken().Position
			d.errAt(max(p.Line, 1), max(p.Column, 1), "", "invalid YAML: "+ye.GetMessage())
		} else {
			d.errAt(1, 1, "", "invalid YAML: "+firstLine(err.Error()))
		}
		return nil, false
	}
	var docs []*ast.DocumentNode
	for _, doc := range f.Docs {
		if doc != nil && doc.Body != nil {
			docs = append(docs, doc)
		}
	}
	if len(docs) == 0 {
		return nil, true
	}
	for _, doc := range docs[1:] {
		d.errorf(doc.Body, "", "a second YAML document: an inventory is one document; remove the '---' line or move the rest to another file")
	}
	return docs[0].Body, true
}

// parseBytes guards against panics in the YAML parser, which would otherwise
// take the whole command down on a malformed file.
func parseBytes(data []byte) (f *ast.File, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("the YAML parser failed: %v", r)
		}
	}()
	// Duplicate keys are allowed here so that we can report all of them,
	// not only the first.
	return parser.ParseBytes(data, 0, parser.AllowDuplicateMapKey())
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// entry is one key: value pair of a mapping.
type entry struct {
	key   string
	keyN  ast.Node // for errors about the key, or about a missing child
	value ast.Node // anchors and tags removed; never nil
	path  string
}

// unwrap removes anchors (&name) and tags (!!str) around a node; nil becomes
// an implicit null so that callers need not check.
func unwrap(n ast.Node) ast.Node {
	for range 100 {
		switch v := n.(type) {
		case *ast.AnchorNode:
			if v.Value == nil {
				return &ast.NullNode{BaseNode: &ast.BaseNode{}, Token: v.Start}
			}
			n = v.Value
		case *ast.TagNode:
			if v.Value == nil {
				return &ast.NullNode{BaseNode: &ast.BaseNode{}, Token: v.Start}
			}
			n = v.Value
		case nil:
			return &ast.NullNode{BaseNode: &ast.BaseNode{}}
		default:
			return n
		}
	}
	return n
}

// describe names a node's type for "must be X, not Y" messages.
func describe(n ast.Node) string {
	switch n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.NullNode:
		return "empty"
	case *ast.IntegerNode:
		return "an integer"
	case *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "a decimal number"
	case *ast.BoolNode:
		return "true/false"
	case *ast.AliasNode:
		return "an alias"
	default:
		return "a string"
	}
}

// aliasError reports a YAML alias: pgfleet does not expand them, because
// the ssh: and postgres: defaults already say a thing once.
func (d *decoder) aliasError(n ast.Node, path string) {
	d.errorf(n, path, "YAML aliases (*name) are not supported: put shared values under the top-level ssh: or postgres: defaults")
}

// scalarText is the text of a scalar node: the value of a string, the
// source text of a number or boolean. ok is false for anything else.
func scalarText(n ast.Node) (string, bool) {
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value, true
	case *ast.LiteralNode:
		if v.Value == nil {
			return "", true
		}
		return v.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		tk := n.GetToken()
		if tk == nil {
			return "", false
		}
		return tk.Value, true
	}
	return "", false
}

// mapping returns the entries of a mapping node in file order. A null node
// (a key with nothing under it) is an empty mapping. Duplicate keys, merge
// keys and keys that are not plain scalars are reported and skipped.
func (d *decoder) mapping(n ast.Node, path, what string) ([]entry, bool) {
	n = unwrap(n)
	var values []*ast.MappingValueNode
	switch v := n.(type) {
	case *ast.NullNode:
		return nil, true
	case *ast.MappingNode:
		values = v.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{v}
	case *ast.AliasNode:
		d.aliasError(n, path)
		return nil, false
	default:
		d.errorf(n, path, "must be a mapping of %s, not %s", what, describe(n))
		return nil, false
	}
	var out []entry
	seen := map[string]ast.Node{}
	for _, mv := range values {
		if mv == nil || mv.Key == nil {
			continue
		}
		keyN := unwrap(mv.Key)
		if _, ok := mv.Key.(*ast.MergeKeyNode); ok {
			d.errorf(mv.Key, path, "YAML merge keys (<<) are not supported: put shared values under the top-level ssh: or postgres: defaults")
			continue
		}
		key, ok := scalarText(keyN)
		if !ok {
			d.errorf(mv.Key, path, "a key must be a plain name, not %s", describe(keyN))
			continue
		}
		p := joinPath(path, key)
		if first, dup := seen[key]; dup {
			line, _ := position(first)
			d.errorf(mv.Key, p, "duplicate key %q (first at line %d): remove one of them", key, line)
			continue
		}
		seen[key] = mv.Key
		out = append(out, entry{key: key, keyN: mv.Key, value: unwrap(mv.Value), path: p})
	}
	return out, true
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// schema describes the keys a mapping may hold. moved maps a key that is
// known elsewhere to where it belongs, for a better hint than a typo.
type schema struct {
	what  string // "ssh settings", for type errors
	keys  []string
	moved map[string]string
}

// fields returns the entries of a mapping with fixed keys, reporting unknown
// ones with the closest known key.
func (d *decoder) fields(n ast.Node, path string, s schema) (map[string]entry, bool) {
	entries, ok := d.mapping(n, path, s.what)
	out := make(map[string]entry, len(entries))
	for _, e := range entries {
		if slices.Contains(s.keys, e.key) {
			out[e.key] = e
			continue
		}
		d.errorf(e.keyN, e.path, "%s", unknownKey(e.key, s))
	}
	return out, ok
}

func unknownKey(key string, s schema) string {
	if where, ok := s.moved[key]; ok {
		return fmt.Sprintf("unknown key %q here: it belongs under %s", key, where)
	}
	if best := closest(key, s.keys); best != "" {
		return fmt.Sprintf("unknown key %q; did you mean %q?", key, best)
	}
	return fmt.Sprintf("unknown key %q; the keys here are: %s", key, strings.Join(s.keys, ", "))
}

// closest returns the candidate nearest to s if it is near enough to be a
// typo of it, or "".
func closest(s string, candidates []string) string {
	best, bestDist := "", -1
	for _, c := range candidates {
		dist := editDistance(strings.ToLower(s), strings.ToLower(c))
		if bestDist < 0 || dist < bestDist {
			best, bestDist = c, dist
		}
	}
	limit := 2
	if len(s) <= 3 {
		limit = 1
	}
	if bestDist < 0 || bestDist > limit {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes
// (keys are ASCII; anything else is far from every key anyway).
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 65
	}
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

// str reads a string value. Numbers and booleans are taken as written
// (a host named 1 is "1"); null, lists and mappings are errors.
func (d *decoder) str(e entry) (string, bool) {
	switch e.value.(type) {
	case *ast.NullNode:
		if e.key == "" {
			d.errorf(e.keyN, e.path, "is empty: write a value after the '-', or remove the line")
		} else {
			d.errorf(e.keyN, e.path, "has no value: write a value after the colon, or remove the key")
		}
		return "", false
	case *ast.AliasNode:
		d.aliasError(e.value, e.path)
		return "", false
	}
	s, ok := scalarText(e.value)
	if !ok {
		d.errorf(e.value, e.path, "must be a string, not %s", describe(e.value))
		return "", false
	}
	return s, true
}

// integer reads an integer value.
func (d *decoder) integer(e entry) (int, bool) {
	switch v := e.value.(type) {
	case *ast.NullNode:
		d.errorf(e.keyN, e.path, "has no value: write a whole number after the colon, or remove the key")
		return 0, false
	case *ast.AliasNode:
		d.aliasError(e.value, e.path)
		return 0, false
	case *ast.IntegerNode:
		switch x := v.Value.(type) {
		case int64:
			if x >= -1<<31 && x < 1<<31 {
				return int(x), true
			}
		case uint64:
			if x < 1<<31 {
				return int(x), true
			}
		}
		d.errorf(e.value, e.path, "%s is out of range", v.Token.Value)
		return 0, false
	}
	if s, ok := scalarText(e.value); ok {
		if _, err := strconv.Atoi(s); err == nil {
			d.errorf(e.value, e.path, "must be a whole number, not the string %q: remove the quotes", s)
			return 0, false
		}
	}
	d.errorf(e.value, e.path, "must be a whole number, not %s", describe(e.value))
	return 0, false
}

// boolean reads a true/false value.
func (d *decoder) boolean(e entry) (bool, bool) {
	switch v := e.value.(type) {
	case *ast.NullNode:
		d.errorf(e.keyN, e.path, "has no value: write true or false after the colon, or remove the key")
		return false, false
	case *ast.AliasNode:
		d.aliasError(e.value, e.path)
		return false, false
	case *ast.BoolNode:
		return v.Value, true
	}
	d.errorf(e.value, e.path, "must be true or false, not %s", describe(e.value))
	return false, false
}

// item is one element of a list, with its node for errors.
type item struct {
	value string
	node  ast.Node
	path  string
}

// strList reads a list of strings. A null value is an empty list.
func (d *decoder) strList(e entry) ([]item, bool) {
	var values []ast.Node
	switch v := e.value.(type) {
	case *ast.NullNode:
		return nil, true
	case *ast.AliasNode:
		d.aliasError(e.value, e.path)
		return nil, false
	case *ast.SequenceNode:
		values = v.Values
	default:
		d.errorf(e.value, e.path, "must be a list ([a, b] or lines starting with '- '), not %s", describe(e.value))
		return nil, false
	}
	out := make([]item, 0, len(values))
	ok := true
	for i, n := range values {
		sub := entry{keyN: n, value: unwrap(n), path: fmt.Sprintf("%s[%d]", e.path, i)}
		if n == nil {
			sub.keyN = e.value
		}
		s, good := d.str(sub)
		if !good {
			ok = false
			continue
		}
		out = append(out, item{value: s, node: sub.value, path: sub.path})
	}
	return out, ok
}
