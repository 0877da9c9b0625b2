package pgsql

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Expected verifiers computed independently with python3 (hashlib.pbkdf2_hmac,
// hmac, hashlib.sha256, base64) from the password, salt and iterations shown.
func TestSCRAMVerifierVectors(t *testing.T) {
	salt16 := make([]byte, 16)
	for i := range salt16 {
		salt16[i] = byte(i)
	}
	tests := []struct {
		password   string
		salt       []byte
		iterations int
		want       string
	}{
		{
			"correct horse battery staple", salt16, 4096,
			"SCRAM-SHA-256$4096:AAECAwQFBgcICQoLDA0ODw==$ONYbSJBXtKl6bP6PVqw8pm9e7EiacprLnoUQPFS80Hw=:IPOtHuGJ2HifEQg74W2XXqqCrCyQG55GbPRHa6g6n9w=",
		},
		{
			`p@ss'\"word:$`, []byte("pgfleet-salt"), 1,
			"SCRAM-SHA-256$1:cGdmbGVldC1zYWx0$tpGl+wGvZWzKAwLRDdGpltY/ixwZQPsLTa2Nh28GFeQ=:7EXHUTKV39QdOjlnfbL4ofeVBzRI8jZOk2b1kmDxmm4=",
		},
	}
	for _, tt := range tests {
		got := SCRAMVerifier(tt.password, tt.salt, tt.iterations)
		if got != tt.want {
			t.Errorf("SCRAMVerifier(%q) =\n %s\nwant\n %s", tt.password, got, tt.want)
		}
		if !SCRAMMatches(tt.want, tt.password) {
			t.Errorf("SCRAMMatches(vector for %q) = false", tt.password)
		}
	}
}

func TestNewSCRAMVerifierRoundTrip(t *testing.T) {
	const pw = "s3cret 'quoted' \\ $$"
	v, err := NewSCRAMVerifier(pw)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v, "SCRAM-SHA-256$4096:") {
		t.Errorf("verifier %s: want iterations 4096", v)
	}
	if !SCRAMMatches(v, pw) {
		t.Error("SCRAMMatches(new verifier, password) = false")
	}
	for _, wrong := range []string{"", "s3cret", pw + " ", strings.ToUpper(pw)} {
		if SCRAMMatches(v, wrong) {
			t.Errorf("SCRAMMatches(v, %q) = true", wrong)
		}
	}
	v2, err := NewSCRAMVerifier(pw)
	if err != nil {
		t.Fatal(err)
	}
	if v == v2 {
		t.Error("two verifiers of the same password are equal: the salt is not random")
	}
	iter, salt, _, _, ok := parseSCRAM(v)
	if !ok || iter != SCRAMIterations || len(salt) != SCRAMSaltLen {
		t.Errorf("parseSCRAM(%s) = %d, %d-byte salt, %v", v, iter, len(salt), ok)
	}
}

func TestNewSCRAMVerifierRejects(t *testing.T) {
	for _, pw := range []string{"", "pässword", "tab\tpw", "new\nline", "nul\x00", "\x7f", "\xff"} {
		if v, err := NewSCRAMVerifier(pw); err == nil {
			t.Errorf("NewSCRAMVerifier(%q) = %s, want an error", pw, v)
		}
	}
	if _, err := NewSCRAMVerifier(" ~!@#$%^&*()_+`-={}|[]\\:\";'<>?,./"); err != nil {
		t.Errorf("printable ASCII refused: %v", err)
	}
}

func TestSCRAMMatchesGarbage(t *testing.T) {
	const good = "SCRAM-SHA-256$1:cGdmbGVldC1zYWx0$tpGl+wGvZWzKAwLRDdGpltY/ixwZQPsLTa2Nh28GFeQ=:7EXHUTKV39QdOjlnfbL4ofeVBzRI8jZOk2b1kmDxmm4="
	const pw = `p@ss'\"word:$`
	if !SCRAMMatches(good, pw) {
		t.Fatal("control verifier does not match")
	}
	garbage := []string{
		"",
		pw,
		"md5" + strings.Repeat("0", 32),
		"SCRAM-SHA-256$",
		"SCRAM-SHA-1$1:cGdmbGVldC1zYWx0$tpGl+wGvZWzKAwLRDdGpltY/ixwZQPsLTa2Nh28GFeQ=:7EXHUTKV39QdOjlnfbL4ofeVBzRI8jZOk2b1kmDxmm4=",
		strings.Replace(good, "$1:", "$0:", 1),
		strings.Replace(good, "$1:", "$-1:", 1),
		strings.Replace(good, "$1:", "$+1:", 1),
		strings.Replace(good, "$1:", "$x:", 1),
		strings.Replace(good, "$1:", "$:", 1),
		strings.Replace(good, "$1:cGdmbGVldC1zYWx0", "$1:", 1),                           // empty salt
		strings.Replace(good, "cGdmbGVldC1zYWx0", "cGdmbGVldC1zYWx0!", 1),                // bad base64
		strings.Replace(good, "tpGl+wGvZWzKAwLRDdGpltY/ixwZQPsLTa2Nh28GFeQ=", "tpGl", 1), // short key
		strings.Replace(good, ":7EX", "7EX", 1),                                          // one key
		strings.Replace(good, "$tpGl", "tpGl", 1),                                        // no keys part
		good + ":AAAA",
		good + "=",
		good[:len(good)-1],
		strings.Replace(good, "tpGl", "tpGm", 1), // StoredKey differs
		strings.Replace(good, "7EXH", "7EXI", 1), // ServerKey differs
		" " + good,
	}
	for _, v := range garbage {
		if SCRAMMatches(v, pw) {
			t.Errorf("SCRAMMatches(%q) = true", v)
		}
	}
}

// A verifier claiming an absurd iteration count does not match, and says
// so at once: the count comes from the server, where whoever can set the
// role's password chooses it. Up to the cap, counts are honoured.
func TestSCRAMMatchesIterationCap(t *testing.T) {
	const pw = "s3cret"
	salt := []byte("pgfleet-salt")
	atCap := SCRAMVerifier(pw, salt, SCRAMMaxIterations)
	if !SCRAMMatches(atCap, pw) {
		t.Errorf("a verifier with %d iterations does not match", SCRAMMaxIterations)
	}
	over := strings.Replace(atCap, fmt.Sprintf("$%d:", SCRAMMaxIterations), fmt.Sprintf("$%d:", SCRAMMaxIterations+1), 1)
	absurd := strings.Replace(atCap, fmt.Sprintf("$%d:", SCRAMMaxIterations), "$2147483647:", 1)
	for _, v := range []string{over, absurd} {
		done := make(chan bool, 1)
		go func() { done <- SCRAMMatches(v, pw) }()
		select {
		case m := <-done:
			if m {
				t.Errorf("SCRAMMatches(%q) = true", v)
			}
		case <-time.After(time.Second):
			t.Fatalf("SCRAMMatches(%q) still hashing after a second", v)
		}
	}
}

func TestSCRAMVerifierPanicsOnBadParameters(t *testing.T) {
	for _, tc := range []struct {
		salt []byte
		iter int
	}{{nil, 4096}, {[]byte("s"), 0}, {[]byte("s"), -1}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("SCRAMVerifier(salt %q, %d) did not panic", tc.salt, tc.iter)
				}
			}()
			SCRAMVerifier("pw", tc.salt, tc.iter)
		}()
	}
}
