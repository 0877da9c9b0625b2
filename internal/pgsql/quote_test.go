package pgsql

import (
	"strings"
	"testing"
)

func TestQuoteIdent(t *testing.T) {
	tests := []struct{ in, want string }{
		{"replicator", `"replicator"`},
		{"Mixed Case", `"Mixed Case"`},
		{`a"b`, `"a""b"`},
		{`"`, `""""`},
		{`x"; DROP ROLE postgres; --`, `"x""; DROP ROLE postgres; --"`},
		{`back\slash`, `"back\slash"`},
		{"new\nline", "\"new\nline\""},
		{"$$", `"$$"`},
		{"ünïcødé ☃", `"ünïcødé ☃"`},
		{"", `""`},
	}
	for _, tt := range tests {
		if got := QuoteIdent(tt.in); got != tt.want {
			t.Errorf("QuoteIdent(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestValidIdent(t *testing.T) {
	good := []string{"replicator", `a"b`, "ünïcødé", strings.Repeat("x", 63), strings.Repeat("é", 31)}
	for _, s := range good {
		if err := ValidIdent(s); err != nil {
			t.Errorf("ValidIdent(%q) = %v, want nil", s, err)
		}
	}
	bad := []string{"", "a\x00b", "\xff", strings.Repeat("x", 64), strings.Repeat("é", 32)}
	for _, s := range bad {
		if err := ValidIdent(s); err == nil {
			t.Errorf("ValidIdent(%q) = nil, want an error", s)
		}
	}
}

func TestQuoteLiteral(t *testing.T) {
	tests := []struct{ in, want string }{
		{"secret", `'secret'`},
		{"", `''`},
		{"it's", `'it''s'`},
		{"''", `''''''`},
		{`x'; DROP ROLE postgres; --`, `'x''; DROP ROLE postgres; --'`},
		{`C:\dir`, `E'C:\\dir'`},
		{`\'`, `E'\\'''`},
		{`\`, `E'\\'`},
		{"line1\nline2", "'line1\nline2'"},
		{"$$ $tag$", `'$$ $tag$'`},
		{"ünïcødé ☃", `'ünïcødé ☃'`},
		{`"dq"`, `'"dq"'`},
	}
	for _, tt := range tests {
		if got := QuoteLiteral(tt.in); got != tt.want {
			t.Errorf("QuoteLiteral(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// unquoteLiteral parses a literal as PostgreSQL would (standard_conforming_strings
// on), to check that quoting round-trips.
func unquoteLiteral(t *testing.T, q string) string {
	t.Helper()
	escapes := strings.HasPrefix(q, "E'")
	if escapes {
		q = q[1:]
	}
	if len(q) < 2 || q[0] != '\'' || q[len(q)-1] != '\'' {
		t.Fatalf("not a literal: %s", q)
	}
	body := q[1 : len(q)-1]
	var b strings.Builder
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case c == '\'':
			if i+1 >= len(body) || body[i+1] != '\'' {
				t.Fatalf("lone quote in %s: the literal ends early", q)
			}
			i++
		case c == '\\' && escapes:
			if i+1 >= len(body) || body[i+1] != '\\' {
				t.Fatalf("unexpected escape in %s", q)
			}
			i++
		}
		b.WriteByte(c)
	}
	return b.String()
}

func TestQuoteLiteralRoundTrip(t *testing.T) {
	for _, s := range []string{"", "'", `\`, `\'\''`, "a'b\\c\nd", "'; SELECT 1; --", `E'x'`} {
		if got := unquoteLiteral(t, QuoteLiteral(s)); got != s {
			t.Errorf("round trip of %q gave %q", s, got)
		}
	}
}

func TestConfValue(t *testing.T) {
	tests := []struct{ in, want string }{
		{"replica", `'replica'`},
		{"5432", `'5432'`},
		{"on", `'on'`},
		{"", `''`},
		{"*", `'*'`},
		{"%m [%p] %q%u@%d ", `'%m [%p] %q%u@%d '`},
		{"it's", `'it''s'`},
		{`C:\x`, `'C:\\x'`},
		{`\'`, `'\\'''`},
		{"a\nmax_connections = 1", `'a\nmax_connections = 1'`},
		{"cr\rlf", `'cr\rlf'`},
		{"# not a comment", `'# not a comment'`},
		{`"$user", public`, `'"$user", public'`},
		{"ünïcødé ☃", `'ünïcødé ☃'`},
		{"tab\there", "'tab\there'"},
	}
	for _, tt := range tests {
		got := ConfValue(tt.in)
		if got != tt.want {
			t.Errorf("ConfValue(%q) = %s, want %s", tt.in, got, tt.want)
		}
		if strings.ContainsAny(got, "\n\r") {
			t.Errorf("ConfValue(%q) = %q spans lines", tt.in, got)
		}
	}
}

func TestSlotName(t *testing.T) {
	long := strings.Repeat("node", 20) // 80 bytes
	tests := []struct{ in, want string }{
		{"db1", "db1"},
		{"DB-1.example.com", "db_1_example_com"},
		{"pg_replica_2", "pg_replica_2"},
		{"1st", "r_1st"},
		{"9", "r_9"},
		{"", "r_"},
		{"_x", "_x"},
		{"-x", "_x"},
		{"ünï", "_n_"},
		{"a b'c\"d;e", "a_b_c_d_e"},
		// Suffix: first 4 bytes of sha256("node"×20), from python3 hashlib.
		{long, long[:54] + "_baa43e0d"},
	}
	for _, tt := range tests {
		got := SlotName(tt.in)
		if got != tt.want {
			t.Errorf("SlotName(%q) = %s, want %s", tt.in, got, tt.want)
		}
		checkSlot(t, tt.in, got)
	}
}

func checkSlot(t *testing.T, in, got string) {
	t.Helper()
	if len(got) == 0 || len(got) > MaxIdentLen {
		t.Errorf("SlotName(%q) = %q: length %d", in, got, len(got))
	}
	for i := 0; i < len(got); i++ {
		c := got[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			t.Errorf("SlotName(%q) = %q: byte %q not allowed", in, got, c)
		}
	}
	if c := got[0]; c >= '0' && c <= '9' {
		t.Errorf("SlotName(%q) = %q starts with a digit", in, got)
	}
}

func TestSlotNameLong(t *testing.T) {
	prefix := strings.Repeat("a", 70)
	a, b := SlotName(prefix+"-east"), SlotName(prefix+"-west")
	if a == b {
		t.Errorf("long names collide: %s", a)
	}
	for _, s := range []string{a, b} {
		checkSlot(t, prefix, s)
		if len(s) != MaxIdentLen {
			t.Errorf("len(%s) = %d, want %d", s, len(s), MaxIdentLen)
		}
	}
	// Stable: the same host always gets the same slot.
	if SlotName(prefix+"-east") != a {
		t.Error("SlotName is not deterministic")
	}
	// Exactly 63 bytes is kept as is; a digit-led 62-byte name grows to 64 and is cut.
	if s := strings.Repeat("b", 63); SlotName(s) != s {
		t.Errorf("63-byte name changed: %s", SlotName(s))
	}
	checkSlot(t, "digits", SlotName("1"+strings.Repeat("b", 61)))
	// Multi-byte runes each become one '_', so the length is counted after that.
	if s := strings.Repeat("é", 40); SlotName(s) != strings.Repeat("_", 40) {
		t.Errorf("SlotName(é×40) = %s", SlotName(s))
	}
}

func TestQuoteConninfo(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.1":   "10.0.0.1",
		"fd00::1":    "fd00::1",
		"db-1.local": "db-1.local",
		"":           "''",
		"a b":        "'a b'",
		"a\tb":       "'a\tb'",
		"a\nb":       "'a\nb'",
		"a\rb\fc\vd": "'a\rb\fc\vd'",
		"it's":       `'it\'s'`,
		`a\b`:        `'a\\b'`,
		"a=b":        "'a=b'",
		`\'`:         `'\\\''`,
	} {
		if got := QuoteConninfo(in); got != want {
			t.Errorf("QuoteConninfo(%q) = %q, want %q", in, got, want)
		}
	}
}
