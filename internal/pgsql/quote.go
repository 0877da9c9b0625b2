// Package pgsql holds the small pieces of PostgreSQL syntax pgfleet writes
// itself: quoted identifiers and literals for SQL, values for
// postgresql.conf and for libpq connection strings, replication slot
// names, WAL positions (LSNs), and SCRAM-SHA-256 password verifiers.
//
// It imports no other pgfleet package.
package pgsql

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxIdentLen is the longest identifier PostgreSQL keeps (NAMEDATALEN-1
// bytes); the server silently truncates longer ones.
const MaxIdentLen = 63

// ValidIdent reports why s cannot be used as a PostgreSQL identifier, or nil.
// QuoteIdent accepts any string, so callers check names from the inventory
// with ValidIdent first: PostgreSQL text cannot hold a NUL byte, the server
// rejects invalid UTF-8 (in a UTF8 database), and a name longer than
// MaxIdentLen bytes would be truncated and so name a different object.
func ValidIdent(s string) error {
	switch {
	case s == "":
		return errors.New("empty identifier")
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("identifier %q contains a NUL byte", s)
	case !utf8.ValidString(s):
		return fmt.Errorf("identifier %q is not valid UTF-8", s)
	case len(s) > MaxIdentLen:
		return fmt.Errorf("identifier %q is longer than %d bytes", s, MaxIdentLen)
	}
	return nil
}

// QuoteIdent quotes s as a PostgreSQL identifier: "..." with every " doubled.
// The result is always one identifier token, whatever s holds; check s with
// ValidIdent first, since the server rejects or truncates some names.
func QuoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// QuoteLiteral quotes s as a PostgreSQL string literal, as libpq's
// PQescapeLiteral does: '...' with every ' doubled, and, when s holds a
// backslash, the E'...' form with every \ doubled, so the literal means the
// same whatever standard_conforming_strings is set to.
//
// A NUL byte cannot be part of a PostgreSQL string; the server rejects such a
// statement, so callers should refuse these values up front.
func QuoteLiteral(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return "'" + strings.ReplaceAll(s, "'", "''") + "'"
	}
	return "E'" + literalEscapes.Replace(s) + "'"
}

var (
	literalEscapes = strings.NewReplacer(`'`, `''`, `\`, `\\`)
	confEscapes    = strings.NewReplacer(`'`, `''`, `\`, `\\`, "\n", `\n`, "\r", `\r`)
)

// ConfValue quotes v for postgresql.conf: '...' with ' doubled and \
// doubled. A line break cannot appear inside a quoted value in
// postgresql.conf, so newline and carriage return are written as the escapes
// \n and \r, which the server's parser turns back into the characters.
//
// Values are always quoted: the server accepts quoted numbers, sizes,
// booleans and enums for every parameter, so no value can be misread as
// something else. A NUL byte cannot be represented; callers must refuse it.
func ConfValue(v string) string {
	return "'" + confEscapes.Replace(v) + "'"
}

// QuoteConninfo quotes a value of a libpq key/value connection string
// (host=... port=...) when it needs it: '...' with ' and \ escaped by a
// backslash. libpq ends an unquoted value at any white space its
// isspace() knows, so all of it is quoted, line breaks included.
func QuoteConninfo(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n\v\f\r'\\=") {
		return s
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// SlotName turns an inventory host name into a replication slot name, which
// PostgreSQL restricts to lower-case letters, digits and underscores, at most
// MaxIdentLen bytes.
//
// Letters are lower-cased and every other character (one per rune) becomes
// '_'. A name that would start with a digit, or is empty, gets the prefix
// "r_". A name that would be too long is cut and ends with '_' and 8 hex
// digits of the SHA-256 of the whole host name, so two long host names that
// share a prefix still get different slots.
//
// Different host names can still map to the same slot ("db-1" and "db.1"
// both give "db_1"); callers that need distinct slots must check.
func SlotName(host string) string {
	var b strings.Builder
	b.Grow(len(host) + 2)
	for _, r := range host {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
			b.WriteRune(r)
		case r >= 'A' && r <= 'Z':
			b.WriteRune(r - 'A' + 'a')
		default:
			b.WriteByte('_')
		}
	}
	name := b.String()
	if name == "" || (name[0] >= '0' && name[0] <= '9') {
		name = "r_" + name
	}
	if len(name) > MaxIdentLen {
		sum := sha256.Sum256([]byte(host))
		suffix := "_" + hex.EncodeToString(sum[:4])
		name = name[:MaxIdentLen-len(suffix)] + suffix
	}
	return name
}
