package steps

import "strings"

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
