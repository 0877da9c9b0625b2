package pgsql

import (
	"regexp"
	"strings"
)

// Masked is what MaskPasswords puts in place of a password.
const Masked = "********"

var (
	// passwordKey is a conninfo's password or sslpassword keyword and its
	// '=', with the blanks libpq allows around it.
	passwordKey = regexp.MustCompile(`(?i)password[ \t]*=[ \t]*`)
	// uriPassword is the password of a conninfo URI:
	// postgresql://user:PASSWORD@host.
	uriPassword = regexp.MustCompile(`(?i)(postgres(?:ql)?://[^:@/\s'"]*:)([^@\s'"]*)@`)
)

// MaskPasswords returns text with the value of every password= and
// sslpassword= of a conninfo string in it replaced by Masked, whether the
// value is bare, quoted for libpq ('...'), or quoted again inside a
// postgresql.conf string (between doubled quotes or \'...\'); and the password of a
// postgresql:// URI. It is for what pgfleet shows (diffs, plans): a
// conninfo written by hand in a file pgfleet replaces may hold one.
func MaskPasswords(text string) string {
	var b strings.Builder
	for {
		loc := passwordKey.FindStringIndex(text)
		if loc == nil {
			b.WriteString(text)
			break
		}
		b.WriteString(text[:loc[1]])
		rest := text[loc[1]:]
		n := passwordValueLen(rest)
		if n > 0 {
			b.WriteString(Masked)
		}
		text = rest[n:]
	}
	return uriPassword.ReplaceAllString(b.String(), "${1}"+Masked+"@")
}

// passwordValueLen is the length of the conninfo value s begins with.
func passwordValueLen(s string) int {
	for _, q := range []string{`\'`, `''`} {
		if strings.HasPrefix(s, q) {
			if i := strings.Index(s[len(q):], q); i >= 0 {
				return len(q) + i + len(q)
			}
			return lineEnd(s)
		}
	}
	if strings.HasPrefix(s, "'") {
		for i := 1; i < len(s); i++ {
			switch s[i] {
			case '\\':
				i++
			case '\'':
				return i + 1
			case '\n':
				return i
			}
		}
		return len(s)
	}
	return strings.IndexFunc(s+" ", func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\'' || r == '"'
	})
}

func lineEnd(s string) int {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return i
	}
	return len(s)
}
