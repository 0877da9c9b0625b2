package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/token"
)

// This file rewrites an inventory after its primary changed. It never
// re-serialises the YAML, which would lose comments and layout: it finds the
// two scalars to change through the AST's positions and replaces their bytes,
// then checks the result three ways before returning it.

// SetPrimary returns src, an inventory file, with newPrimary as the primary of
// cluster and the old primary in the replicas list where newPrimary was:
// {primary: db1, replicas: [db2, db3]} with db2 promoted becomes
// {primary: db2, replicas: [db1, db3]}. Only the bytes of those two scalars
// change; each keeps its quoting (plain, 'single' or "double") unless the new
// name would read as something else plain (null), when it is single-quoted.
// Everything else (comments, blank lines, key order, flow or block style,
// anchors, tags, CRLF line ends) stays byte for byte. If newPrimary is already
// the primary, src is returned unchanged.
//
// file names the inventory in errors and resolves relative paths, as for
// Parse. src must be a valid inventory. Refusals are *Error (or Errors, for
// an invalid src) naming the file and line: an unknown cluster, a newPrimary
// that is not a replica of the cluster, or a scalar pgfleet cannot replace
// byte for byte (a block scalar such as "primary: |"). The result is parsed
// before it is returned and must be the same inventory with only the
// cluster's primary and replicas changed; it never says anything else.
func SetPrimary(src []byte, file, cluster, newPrimary string) ([]byte, error) {
	before, err := Parse(src, file)
	if err != nil {
		var errs Errors
		if errors.As(err, &errs) {
			return nil, fmt.Errorf("%s is not a valid inventory, so pgfleet will not rewrite it; fix it and run again:\n%w", file, err)
		}
		return nil, err
	}
	// The decoder's positions are counted on the text with LF line ends:
	// the YAML lexer miscounts lines after a comment ending in CRLF.
	norm, origOffset, crLine, crCol := normaliseNewlines(src)
	if norm == nil {
		return nil, &Error{File: file, Line: crLine, Column: crCol,
			Msg: "a carriage return (CR) that does not end a line: pgfleet rewrites only files with LF or CRLF line ends; remove it"}
	}
	body, ok := (&decoder{file: file}).parseYAML(norm)
	if !ok || body == nil {
		return nil, fmt.Errorf("%s: the YAML parser reads the file differently with LF line ends; pgfleet will not rewrite it", file)
	}
	c := before.Cluster(cluster)
	if c == nil {
		names := make([]string, len(before.Clusters))
		for i, c := range before.Clusters {
			names[i] = c.Name
		}
		line, col := position(lookup(body, "clusters"))
		return nil, &Error{File: file, Line: line, Column: col, Path: "clusters", Msg: fmt.Sprintf("there is no cluster %q; the clusters are: %s", cluster, strings.Join(names, ", "))}
	}
	oldPrimary := c.Primary.Name
	if newPrimary == oldPrimary {
		return slices.Clone(src), nil
	}
	slot := slices.IndexFunc(c.Replicas, func(h *Host) bool { return h.Name == newPrimary })

	primaryN, replicasN, err := findRoles(body, file, cluster)
	if err != nil {
		return nil, err
	}
	if slot < 0 {
		names := make([]string, len(c.Replicas))
		for i, h := range c.Replicas {
			names[i] = h.Name
		}
		var where ast.Node = replicasN
		if replicasN == nil {
			where = primaryN
		}
		line, col := position(where)
		list := "it has no replicas"
		if len(names) > 0 {
			list = "its replicas are: " + strings.Join(names, ", ")
		}
		return nil, &Error{File: file, Line: line, Column: col, Path: "clusters." + cluster + ".replicas",
			Msg: fmt.Sprintf("host %q is not a replica of cluster %q, so it cannot become its primary; %s", newPrimary, cluster, list)}
	}
	replicaN := unwrap(replicasN.Values[slot])

	tokens := lexer.Tokenize(string(norm))
	var edits []edit
	for _, t := range []struct {
		n          ast.Node
		path, want string
	}{
		{primaryN, "clusters." + cluster + ".primary", newPrimary},
		{replicaN, fmt.Sprintf("clusters.%s.replicas[%d]", cluster, slot), oldPrimary},
	} {
		e, err := locate(norm, tokens, t.n, t.want)
		if err != nil {
			line, col := position(t.n)
			return nil, &Error{File: file, Line: line, Column: col, Path: t.path, Msg: err.Error()}
		}
		// end is exclusive: map the scalar's last byte, never a line end,
		// lest a CR before the LF be taken with it.
		e.start, e.end = origOffset[e.start], origOffset[e.end-1]+1
		if e.end <= e.start || bytes.ContainsAny(src[e.start:e.end], "\r\n") {
			return nil, fmt.Errorf("%s: pgfleet found the wrong bytes for %s, so the file is left as it is; change primary: and replicas: by hand", file, t.path)
		}
		edits = append(edits, e)
	}
	slices.SortFunc(edits, func(a, b edit) int { return a.start - b.start })
	var out []byte
	last := 0
	for _, e := range edits {
		out = append(out, src[last:e.start]...)
		out = append(out, e.text...)
		last = e.end
	}
	out = append(out, src[last:]...)

	if err := checkRewrite(before, out, file, cluster, newPrimary, slot); err != nil {
		return nil, fmt.Errorf("%s: pgfleet's rewrite of cluster %q came out wrong, so the file is left as it is; change primary: and replicas: by hand (%v)", file, cluster, err)
	}
	if err := checkTokens(norm, out, []ast.Node{primaryN, replicaN}); err != nil {
		return nil, fmt.Errorf("%s: pgfleet's rewrite of cluster %q came out wrong, so the file is left as it is; change primary: and replicas: by hand (%v)", file, cluster, err)
	}
	return out, nil
}

// edit replaces src[start:end] with text.
type edit struct {
	start, end int
	text       string
}

// normaliseNewlines returns src with CRLF made LF, and for each offset of
// the result (and its end) the offset in src. A CR that does not end a line
// gives a nil norm and its line and column.
func normaliseNewlines(src []byte) (norm []byte, orig []int, line, col int) {
	norm = make([]byte, 0, len(src))
	orig = make([]int, 0, len(src)+1)
	line, lineStart := 1, 0
	for i := 0; i < len(src); i++ {
		c := src[i]
		if c == '\r' {
			if i+1 < len(src) && src[i+1] == '\n' {
				continue
			}
			return nil, nil, line, i - lineStart + 1
		}
		if c == '\n' {
			line, lineStart = line+1, i+1
		}
		norm = append(norm, c)
		orig = append(orig, i)
	}
	orig = append(orig, len(src))
	return norm, orig, 0, 0
}

// findRoles finds the scalar node of clusters.NAME.primary and the sequence
// of clusters.NAME.replicas (nil if the key is absent or empty) in a valid
// inventory's AST.
func findRoles(body ast.Node, file, cluster string) (primary ast.Node, replicas *ast.SequenceNode, err error) {
	clusters := lookup(body, "clusters")
	c := lookup(clusters, cluster)
	if c == nil {
		return nil, nil, fmt.Errorf("%s: cannot find cluster %q in the YAML", file, cluster)
	}
	primary = lookup(c, "primary")
	if primary == nil {
		return nil, nil, fmt.Errorf("%s: cannot find the primary of cluster %q in the YAML", file, cluster)
	}
	switch r := lookup(c, "replicas").(type) {
	case nil, *ast.NullNode:
	case *ast.SequenceNode:
		replicas = r
	default:
		return nil, nil, fmt.Errorf("%s: the replicas of cluster %q are not a list in the YAML", file, cluster)
	}
	return primary, replicas, nil
}

// lookup returns the value of key in mapping n, anchors and tags removed, or
// nil.
func lookup(n ast.Node, key string) ast.Node {
	var values []*ast.MappingValueNode
	switch v := unwrap(n).(type) {
	case *ast.MappingNode:
		values = v.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{v}
	}
	for _, mv := range values {
		if mv == nil || mv.Key == nil {
			continue
		}
		if k, ok := scalarText(unwrap(mv.Key)); ok && k == key {
			return unwrap(mv.Value)
		}
	}
	return nil
}

// locate finds the bytes of scalar n in norm and says what to put there to
// make it want, in the same quoting style.
func locate(norm []byte, tokens token.Tokens, n ast.Node, want string) (edit, error) {
	tk := n.GetToken()
	if tk == nil || tk.Position == nil {
		return edit{}, errors.New("pgfleet cannot tell where this value is in the file; change it by hand")
	}
	switch n.(type) {
	case *ast.StringNode, *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
	case *ast.LiteralNode:
		return edit{}, errors.New("is a block scalar (| or >), which pgfleet does not rewrite: write the host name after the colon, as in primary: db1")
	default:
		return edit{}, fmt.Errorf("is %s, which pgfleet does not rewrite: write the host name after the colon, as in primary: db1", describe(n))
	}
	var text string
	switch tk.Type {
	case token.SingleQuoteType:
		text = "'" + want + "'"
	case token.DoubleQuoteType:
		text = `"` + want + `"`
	default:
		text = want
		if !plainSafe(want) {
			text = "'" + want + "'"
		}
	}
	starts := candidateOffsets(norm, tk.Position.Line, tk.Position.Column)
	if off, ok := originOffset(norm, tokens, tk); ok {
		starts = append([]int{off}, starts...)
	}
	for _, start := range starts {
		if end, ok := scalarEnd(norm, start, tk); ok {
			return edit{start: start, end: end, text: text}, nil
		}
	}
	return edit{}, fmt.Errorf("pgfleet cannot find the bytes of %q here (a tab or line break inside the value?); change it by hand", tk.Value)
}

// plainSafe reports whether name, a valid host name, reads back as the same
// string when written without quotes.
func plainSafe(name string) bool {
	switch name {
	case "null", "Null", "NULL", "~", "":
		return false
	}
	return nameRe.MatchString(name)
}

// originOffset finds where token tk starts in norm from the lexer's tokens
// of norm: each token's Origin is its text with the blanks around it, so
// the lengths of the ones before it add up to its offset. Each Origin on the
// way is checked against norm, as the lexer does not keep some (escapes in
// double quotes, CRLF) as they are written.
func originOffset(norm []byte, tokens token.Tokens, tk *token.Token) (int, bool) {
	off := 0
	for _, t := range tokens {
		if !bytes.HasPrefix(norm[off:], []byte(t.Origin)) {
			return 0, false
		}
		if t.Position != nil && t.Position.Line == tk.Position.Line && t.Position.Column == tk.Position.Column &&
			t.Type == tk.Type && t.Value == tk.Value {
			blank := len(t.Origin) - len(strings.TrimLeft(t.Origin, " \t\n"))
			return off + blank, true
		}
		off += len(t.Origin)
	}
	return 0, false
}

// candidateOffsets turns a token's 1-based line and column into byte offsets
// where it may start. The lexer counts columns in characters, but skips tabs
// in some places, so both readings are tried.
func candidateOffsets(norm []byte, line, col int) []int {
	start := 0
	for l := 1; l < line; l++ {
		i := bytes.IndexByte(norm[start:], '\n')
		if i < 0 {
			return nil
		}
		start += i + 1
	}
	end := len(norm)
	if i := bytes.IndexByte(norm[start:], '\n'); i >= 0 {
		end = start + i
	}
	var out []int
	for _, skipTabs := range []bool{false, true} {
		c, i := 1, start
		for i < end && c < col {
			r, size := utf8.DecodeRune(norm[i:end])
			if !(skipTabs && r == '\t') {
				c++
			}
			i += size
		}
		for skipTabs && i < end && norm[i] == '\t' {
			i++
		}
		if c == col && !slices.Contains(out, i) {
			out = append(out, i)
		}
	}
	return out
}

// scalarEnd checks that the scalar token tk starts at norm[start:] and
// returns where it ends. Quoted scalars must close on the same line.
func scalarEnd(norm []byte, start int, tk *token.Token) (int, bool) {
	rest := norm[start:]
	if nl := bytes.IndexByte(rest, '\n'); nl >= 0 {
		rest = rest[:nl]
	}
	switch tk.Type {
	case token.SingleQuoteType:
		if len(rest) == 0 || rest[0] != '\'' {
			return 0, false
		}
		for i := 1; i < len(rest); i++ {
			if rest[i] == '\'' {
				if i+1 < len(rest) && rest[i+1] == '\'' {
					i++
					continue
				}
				return start + i + 1, true
			}
		}
		return 0, false
	case token.DoubleQuoteType:
		if len(rest) == 0 || rest[0] != '"' {
			return 0, false
		}
		for i := 1; i < len(rest); i++ {
			switch rest[i] {
			case '\\':
				i++
			case '"':
				return start + i + 1, true
			}
		}
		return 0, false
	default:
		v := tk.Value
		if v == "" || !bytes.HasPrefix(rest, []byte(v)) {
			return 0, false
		}
		if len(rest) > len(v) && !strings.ContainsRune(" \t,]}", rune(rest[len(v)])) {
			return 0, false
		}
		return start + len(v), true
	}
}

// checkRewrite parses out and checks that it is the inventory before with
// only cluster's primary and replicas changed as asked.
func checkRewrite(before *Inventory, out []byte, file, cluster, newPrimary string, slot int) error {
	after, err := Parse(out, file)
	if err != nil {
		return fmt.Errorf("the result does not parse: %v", firstLine(err.Error()))
	}
	c := after.Cluster(cluster)
	if c == nil || c.Primary == nil || c.Primary.Name != newPrimary {
		return fmt.Errorf("the result does not have %s as the primary of cluster %q", newPrimary, cluster)
	}
	// What after must be: before, with the two hosts' roles swapped.
	want := before.Cluster(cluster)
	old := want.Primary
	want.Primary, want.Replicas[slot] = want.Replicas[slot], old
	defer func() { want.Replicas[slot], want.Primary = want.Primary, old }()
	if !reflect.DeepEqual(before, after) {
		return errors.New("the result differs from the inventory in more than the primary and replicas")
	}
	return nil
}

// checkTokens checks that out, read by the YAML lexer, has the tokens of
// norm, the file before with LF line ends: same types and values, comments
// included, except at the positions of the changed scalars.
func checkTokens(norm, out []byte, changed []ast.Node) error {
	outNorm := bytes.ReplaceAll(out, []byte("\r\n"), []byte("\n"))
	a, b := lexer.Tokenize(string(norm)), lexer.Tokenize(string(outNorm))
	if len(a) != len(b) {
		return fmt.Errorf("the result has %d YAML tokens, not %d", len(b), len(a))
	}
	skip := map[[2]int]bool{}
	for _, n := range changed {
		p := n.GetToken().Position
		skip[[2]int{p.Line, p.Column}] = true
	}
	found := 0
	for i := range a {
		if a[i].Position != nil && skip[[2]int{a[i].Position.Line, a[i].Position.Column}] {
			found++
			continue
		}
		if a[i].Type != b[i].Type || a[i].Value != b[i].Value {
			return fmt.Errorf("line %d: %q became %q", a[i].Position.Line, a[i].Value, b[i].Value)
		}
	}
	if found != len(changed) {
		return fmt.Errorf("found %d of the %d changed values among the YAML tokens", found, len(changed))
	}
	return nil
}
