package pgsql

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

var lsnRE = regexp.MustCompile(`^[0-9A-F]{1,8}/[0-9A-F]{1,8}$`)

// ParseLSN reads a pg_lsn ("16/B374D848").
func ParseLSN(s string) (uint64, error) {
	if !lsnRE.MatchString(s) {
		return 0, fmt.Errorf("not an LSN: %q", s)
	}
	hi, lo, _ := strings.Cut(s, "/")
	h, err := strconv.ParseUint(hi, 16, 32)
	if err != nil {
		return 0, err
	}
	l, err := strconv.ParseUint(lo, 16, 32)
	if err != nil {
		return 0, err
	}
	return h<<32 | l, nil
}

// FormatLSN writes a WAL position the way PostgreSQL does ("16/B374D848").
func FormatLSN(lsn uint64) string { return fmt.Sprintf("%X/%X", lsn>>32, lsn&0xFFFFFFFF) }
