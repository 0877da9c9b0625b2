package pgsql

import "testing"

func TestLSNPattern(t *testing.T) {
	for s, want := range map[string]bool{"0/3000148": true, "16/B374D848": true, "FFFFFFFF/FFFFFFFF": true,
		"": false, "0/": false, "0/3000148\n": false, "0/abc": false, "1/2/3": false, "' OR 1=1 --": false} {
		if lsnRE.MatchString(s) != want {
			t.Errorf("lsnRE.MatchString(%q) = %v, want %v", s, !want, want)
		}
	}
}

func TestParseLSN(t *testing.T) {
	for in, want := range map[string]uint64{"0/0": 0, "0/3000148": 0x3000148, "16/B374D848": 0x16_B374D848, "FFFFFFFF/FFFFFFFF": 1<<64 - 1} {
		if got, err := ParseLSN(in); err != nil || got != want {
			t.Errorf("ParseLSN(%q) = %x, %v; want %x", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "3000148", "0/xyz", "1/2/3", "100000000/0"} {
		if _, err := ParseLSN(bad); err == nil {
			t.Errorf("ParseLSN(%q) succeeded", bad)
		}
	}
}
