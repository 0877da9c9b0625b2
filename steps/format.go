package steps

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// FormatBytes prints a byte count for people: 0 B, 812 B, 16.0 MB.
func FormatBytes(b int64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := int64(unit), 0
	for n := b / unit; n >= unit && exp < 4; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(b)/float64(div), "KMGTP"[exp])
}

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
