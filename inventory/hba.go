package inventory

import (
	"fmt"
	"net/netip"
	"strings"
)

// hbaIncludes are the pg_hba.conf directives (PostgreSQL 16 and later)
// that read another file in place of the line.
var hbaIncludes = map[string]bool{"include": true, "include_if_exists": true, "include_dir": true}

// hbaInclude says why an hba line cannot be in the inventory, or "" if it
// can: a line that includes another file would hand pg_hba.conf, which
// pgfleet writes whole, to a file it does not manage and the inventory does
// not show. PostgreSQL matches the directive exactly, and reads a quoted
// word as the same directive; any case is refused here, since Include is
// no connection type either.
func hbaInclude(line string) string {
	if i := strings.IndexByte(line, '#'); i >= 0 {
		line = line[:i]
	}
	f := strings.Fields(line)
	if len(f) == 0 {
		return ""
	}
	word := strings.Trim(f[0], `"`)
	if !hbaIncludes[strings.ToLower(word)] {
		return ""
	}
	return fmt.Sprintf("%s would read another file into pg_hba.conf, which pgfleet writes whole, and cannot be an hba line: write that file's lines in hba", word)
}

// HBAWarning says why a pg_hba.conf line is likely a mistake, or "" if it
// is not: the method trust, which lets in whoever reaches the port as any
// user it names, with no password; or an address that matches every
// client, which leaves the server's whole network reach to the password.
// Both are valid, and sometimes wanted, so they are warned about, not
// refused.
func HBAWarning(line string) string {
	if i := strings.IndexByte(line, '#'); i >= 0 {
		line = line[:i]
	}
	f := strings.Fields(line)
	if len(f) < 4 {
		return ""
	}
	var why []string
	method := 3 // local DATABASE USER METHOD
	if f[0] != "local" {
		// host* DATABASE USER ADDRESS [MASK] METHOD
		method = 4
		addr := f[3]
		if len(f) > 5 && !strings.Contains(addr, "/") {
			if _, err := netip.ParseAddr(f[4]); err == nil {
				method = 5
				addr += "/" + f[4]
			}
		}
		if matchesEveryone(addr) {
			why = append(why, addr+" matches every client address: name the network the clients are on, e.g. 192.168.0.0/24")
		}
	}
	if len(f) > method && f[method] == "trust" {
		why = append(why, "trust lets in whoever reaches the server, as any user the line names, with no password: use scram-sha-256")
	}
	return strings.Join(why, "; ")
}

// matchesEveryone reports whether an hba address matches any client: all,
// a /0 prefix, or an address with a zero mask.
func matchesEveryone(addr string) bool {
	if addr == "all" {
		return true
	}
	ip, mask, ok := strings.Cut(addr, "/")
	if !ok {
		return false
	}
	if _, err := netip.ParseAddr(ip); err != nil {
		return false
	}
	if m, err := netip.ParseAddr(mask); err == nil {
		return m.IsUnspecified()
	}
	return mask == "0"
}
