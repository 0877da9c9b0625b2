package steps

import (
	"slices"
	"strings"

	"github.com/pgfleet/pgfleet/internal/pgsql"
)

// autoConfValue returns a parameter's value in postgresql.auto.conf, "" if
// it is not set there.
func autoConfValue(conf, name string) string {
	val := ""
	for _, line := range strings.Split(conf, "\n") {
		line = strings.TrimSpace(line)
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) != name {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
			v = unquoteConf(v[1 : len(v)-1])
		}
		val = v // the last one wins, as in PostgreSQL
	}
	return val
}

// unquoteConf undoes postgresql.conf's quoting inside '...': ” is a
// quote, and a backslash escapes as in C.
func unquoteConf(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'' && i+1 < len(s) && s[i+1] == '\'':
			b.WriteByte('\'')
			i++
		case c == '\\' && i+1 < len(s):
			i++
			switch s[i] {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			default:
				b.WriteByte(s[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// conninfoValue returns one keyword's value from a libpq conninfo string
// ("host=a port=5432 application_name='x y'"); the last one wins, as in
// libpq.
func conninfoValue(conninfo, key string) string {
	s, found := conninfo, ""
	for s != "" {
		s = strings.TrimLeft(s, " \t")
		k, rest, ok := strings.Cut(s, "=")
		if !ok {
			break
		}
		k = strings.TrimSpace(k)
		rest = strings.TrimLeft(rest, " \t")
		var v strings.Builder
		if strings.HasPrefix(rest, "'") {
			i := 1
			for ; i < len(rest); i++ {
				if rest[i] == '\\' && i+1 < len(rest) {
					i++
					v.WriteByte(rest[i])
					continue
				}
				if rest[i] == '\'' {
					i++
					break
				}
				v.WriteByte(rest[i])
			}
			s = rest[i:]
		} else {
			end := strings.IndexAny(rest, " \t")
			if end < 0 {
				end = len(rest)
			}
			v.WriteString(rest[:end])
			s = rest[end:]
		}
		if k == key {
			found = v.String()
		}
	}
	return found
}

// confParams reads the `name = value` lines of a postgresql.conf: values
// by lower-cased name (names are case-insensitive in PostgreSQL), the
// last one of a name winning. The `=` is optional, as in PostgreSQL; a
// quoted value is unquoted; comments and include directives are left out.
func confParams(conf []byte) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(string(conf), "\n") {
		line = strings.TrimSpace(line)
		end := strings.IndexFunc(line, func(r rune) bool {
			return !(r == '_' || r == '.' || r == '-' || '0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z')
		})
		if end < 0 {
			end = len(line)
		}
		name, rest := strings.ToLower(line[:end]), strings.TrimSpace(line[end:])
		if name == "" || strings.HasPrefix(name, "include") {
			continue
		}
		rest = strings.TrimSpace(strings.TrimPrefix(rest, "="))
		var val string
		if strings.HasPrefix(rest, "'") {
			i := 1
			for ; i < len(rest); i++ {
				if rest[i] == '\\' {
					i++
					continue
				}
				if rest[i] == '\'' {
					if i+1 < len(rest) && rest[i+1] == '\'' {
						i++
						continue
					}
					break
				}
			}
			val = unquoteConf(rest[1:min(i, len(rest))])
		} else {
			val, _, _ = strings.Cut(rest, "#")
			val = strings.TrimSpace(val)
			if j := strings.IndexAny(val, " \t"); j >= 0 {
				val = val[:j]
			}
		}
		out[name] = val
	}
	return out
}

// changedParams are the names of the parameters whose values differ
// between two postgresql.conf files, set in either, sorted.
func changedParams(before, after []byte) []string {
	a, b := confParams(before), confParams(after)
	var out []string
	for name, v := range a {
		if w, ok := b[name]; !ok || w != v {
			out = append(out, name)
		}
	}
	for name := range b {
		if _, ok := a[name]; !ok {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// maskPasswords is list with pgsql.MaskPasswords applied to each item.
func maskPasswords(list []string) []string {
	if list == nil {
		return nil
	}
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = pgsql.MaskPasswords(s)
	}
	return out
}
