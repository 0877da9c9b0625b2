package pgsql

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// SCRAM defaults, as PostgreSQL's own: scram_iterations (PostgreSQL 16 and
// later; fixed before) and the salt length of pg_be_scram_build_secret.
const (
	SCRAMIterations = 4096
	SCRAMSaltLen    = 16
)

// SCRAMMaxIterations is the most iterations SCRAMMatches computes. A
// verifier is read from the server, where anyone who can set a role's
// password chooses its count: up to 2^31-1, hours of hashing that would
// hang up and --dry-run. One above it counts as not matching, so up sets
// the role's password again, with SCRAMIterations.
const SCRAMMaxIterations = 100000

const scramPrefix = "SCRAM-SHA-256$"

// SCRAMVerifier returns the SCRAM-SHA-256 verifier of password in the form
// PostgreSQL stores in pg_authid.rolpassword and accepts in
// ALTER ROLE ... PASSWORD:
//
//	SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
//
// (base64, RFC 5802 and RFC 7677). Sending the verifier instead of the
// password keeps the password out of SQL, server logs and process lists.
//
// PostgreSQL runs the password through SASLprep first, which leaves ASCII
// unchanged; this function uses the password's bytes as they are, so it
// matches the server for ASCII passwords only. NewSCRAMVerifier enforces
// that. It panics if iterations < 1 or salt is empty, which are programming
// errors.
func SCRAMVerifier(password string, salt []byte, iterations int) string {
	if iterations < 1 || len(salt) == 0 {
		panic(fmt.Sprintf("pgsql.SCRAMVerifier: bad parameters (iterations %d, salt %d bytes)", iterations, len(salt)))
	}
	stored, server, err := scramKeys(password, salt, iterations)
	if err != nil {
		// Only possible in FIPS 140-only mode with a salt under 16 bytes.
		panic("pgsql.SCRAMVerifier: " + err.Error())
	}
	enc := base64.StdEncoding
	return scramPrefix + strconv.Itoa(iterations) + ":" + enc.EncodeToString(salt) +
		"$" + enc.EncodeToString(stored) + ":" + enc.EncodeToString(server)
}

// NewSCRAMVerifier returns the verifier of password with a random
// SCRAMSaltLen-byte salt and SCRAMIterations iterations.
//
// The password must be non-empty (PostgreSQL refuses empty passwords) and
// printable ASCII: the server normalises other passwords with SASLprep, which
// pgfleet does not implement, and a line break could not go into ~/.pgpass.
func NewSCRAMVerifier(password string) (string, error) {
	if err := checkPassword(password); err != nil {
		return "", err
	}
	salt := make([]byte, SCRAMSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("scram salt: %w", err)
	}
	return SCRAMVerifier(password, salt, SCRAMIterations), nil
}

func checkPassword(password string) error {
	if password == "" {
		return errors.New("empty password: PostgreSQL does not accept it")
	}
	for i := 0; i < len(password); i++ {
		if c := password[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("password has a character that is not printable ASCII (byte %d): use printable ASCII only, since PostgreSQL's SASLprep normalisation of other characters is not implemented", i+1)
		}
	}
	return nil
}

// SCRAMMatches reports whether verifier, as SCRAMVerifier or PostgreSQL
// writes it, was made from password. It recomputes both keys with the
// verifier's salt and iteration count and compares them in constant time.
// A verifier that does not parse, or has more than SCRAMMaxIterations
// iterations, gives false without hashing.
func SCRAMMatches(verifier, password string) bool {
	iterations, salt, stored, server, ok := parseSCRAM(verifier)
	if !ok || iterations > SCRAMMaxIterations {
		return false
	}
	gotStored, gotServer, err := scramKeys(password, salt, iterations)
	if err != nil {
		return false
	}
	// Both comparisons run, so the time does not tell which key differed.
	s := subtle.ConstantTimeCompare(stored, gotStored)
	k := subtle.ConstantTimeCompare(server, gotServer)
	return s&k == 1
}

func parseSCRAM(v string) (iterations int, salt, stored, server []byte, ok bool) {
	rest, found := strings.CutPrefix(v, scramPrefix)
	if !found {
		return 0, nil, nil, nil, false
	}
	params, keys, found := strings.Cut(rest, "$")
	if !found {
		return 0, nil, nil, nil, false
	}
	iter, saltB64, found := strings.Cut(params, ":")
	if !found {
		return 0, nil, nil, nil, false
	}
	storedB64, serverB64, found := strings.Cut(keys, ":")
	if !found {
		return 0, nil, nil, nil, false
	}
	n, err := strconv.Atoi(iter)
	if err != nil || n < 1 || iter[0] == '+' {
		return 0, nil, nil, nil, false
	}
	enc := base64.StdEncoding.Strict()
	salt, err = enc.DecodeString(saltB64)
	if err != nil || len(salt) == 0 {
		return 0, nil, nil, nil, false
	}
	stored, err = enc.DecodeString(storedB64)
	if err != nil || len(stored) != sha256.Size {
		return 0, nil, nil, nil, false
	}
	server, err = enc.DecodeString(serverB64)
	if err != nil || len(server) != sha256.Size {
		return 0, nil, nil, nil, false
	}
	return n, salt, stored, server, true
}

// scramKeys computes StoredKey and ServerKey (RFC 5802 section 3).
func scramKeys(password string, salt []byte, iterations int) (stored, server []byte, err error) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return nil, nil, err
	}
	clientKey := hmacSHA256(salted, "Client Key")
	sum := sha256.Sum256(clientKey)
	return sum[:], hmacSHA256(salted, "Server Key"), nil
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}
