package steps

import (
	"slices"
	"strconv"
	"strings"

	"github.com/pgfleet/pgfleet/internal/pgsql"
)

// FormatBytes prints a byte count for people: 0 B, 812 B, 16.0 MB.
var FormatBytes = pgsql.FormatBytes

// HostPort joins a host and a port for people and ssh: [::1]:22, h1:5432,
// or the host alone when the port is 0.
func HostPort(host string, port int) string {
	if host == "" {
		return ""
	}
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "/") {
		host = "[" + host + "]"
	}
	if port == 0 {
		return host
	}
	return host + ":" + strconv.Itoa(port)
}

// JoinInts lists numbers in order: "13, 15".
func JoinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range slices.Sorted(slices.Values(v)) {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}
