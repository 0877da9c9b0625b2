package steps

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/base64"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/pgfleet/pgfleet/internal/remote"
)

//go:embed facts.sh
var factsScript string

// Facts is what a read-only probe found on a host. Steps decide from facts
// whether they have work; an action that changes the host updates the facts
// it changed, so the steps after it see the host as it now is.
type Facts struct {
	OSID, OSVersion, OSCodename string
	PackageManager              string // "apt", or "" when none is known
	Systemd                     bool
	Installed                   []int // PostgreSQL major versions installed
	CreateClusterConf           bool  // pgfleet's createcluster.d file is there
	PostgresHome                string

	DataExists, DataNonEmpty bool
	DataVersion              int // PG_VERSION of the data directory, 0 if none
	StandbySignal            bool
	// CloneIncomplete: a clone into the data directory began and did not
	// finish (its marker DATADIR.pgfleet-cloning is there). What the
	// directory holds is a partial copy, never writes of its own.
	CloneIncomplete bool
	AutoConf        string // postgresql.auto.conf of the data directory
	DiskFreeKB      int64
	Files           map[string][]byte // config files in the config dir, by base name
	PgPass          string

	// From the server, when it runs.
	Running          bool
	SQLError         bool
	ServerVersion    int
	InRecovery       bool
	DataChecksums    bool
	Role             *RoleFacts      // the replication role, nil if absent
	Slots            map[string]bool // physical slots: name -> active
	WALReceiver      *WALReceiver
	PendingRestart   []string
	DBSize           int64
	UserDatabases    int
	ReplicationPeers []ReplicationPeer
}

// RoleFacts describes the replication role on a server.
type RoleFacts struct {
	Replication, Login bool
	Verifier           string // the stored SCRAM verifier; never the password
}

// WALReceiver is a standby's pg_stat_wal_receiver row.
type WALReceiver struct {
	Status, SenderHost string
	SenderPort         int
}

// ReplicationPeer is one pg_stat_replication row on a primary.
type ReplicationPeer struct {
	ApplicationName, ClientAddr, State string
}

// HasVersion says whether PostgreSQL major version v is installed.
func (f *Facts) HasVersion(v int) bool { return slices.Contains(f.Installed, v) }

// gatherFacts runs the probe on a host.
func gatherFacts(ctx context.Context, c *remote.Client, l Layout, version, port int, replUser string) (*Facts, error) {
	res, err := c.Run(ctx, remote.Cmd{
		Args: []string{"sh", "-c", factsScript, "pgfleet-facts",
			strconv.Itoa(version), strconv.Itoa(port), l.DataDir(), l.ConfigDir(), replUser},
		As: "root",
	})
	if serr := c.SudoError(res, err); serr != nil {
		return nil, serr
	}
	if err != nil {
		return nil, fmt.Errorf("gather facts: %w", err)
	}
	return parseFacts(string(res.Stdout))
}

func parseFacts(out string) (*Facts, error) {
	f := &Facts{Files: map[string][]byte{}, Slots: map[string]bool{}}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch {
		case key == "os_id":
			f.OSID = val
		case key == "os_version":
			f.OSVersion = val
		case key == "os_codename":
			f.OSCodename = val
		case key == "pkg":
			f.PackageManager = val
		case key == "init":
			f.Systemd = val == "systemd"
		case key == "pg_installed":
			if v, err := strconv.Atoi(val); err == nil {
				f.Installed = append(f.Installed, v)
			}
		case key == "createcluster_conf":
			f.CreateClusterConf = true
		case key == "postgres_home":
			f.PostgresHome = val
		case key == "data_exists":
			f.DataExists = true
		case key == "data_nonempty":
			f.DataNonEmpty = true
		case key == "data_version":
			f.DataVersion, _ = strconv.Atoi(strings.TrimSpace(val))
		case key == "standby_signal":
			f.StandbySignal = true
		case key == "clone_incomplete":
			f.CloneIncomplete = true
		case key == "disk_free_kb":
			f.DiskFreeKB, _ = strconv.ParseInt(val, 10, 64)
		case key == "files":
			if err := f.readFiles(val); err != nil {
				return nil, err
			}
		case key == "sql_error":
			f.SQLError = true
		case strings.HasPrefix(key, "sql."):
			f.parseSQL(strings.TrimPrefix(key, "sql."), val)
		}
	}
	if f.SQLError {
		f.Running = false
	}
	return f, sc.Err()
}

// readFiles takes the probe's files: a base64 tar of the configuration
// files, postgresql.auto.conf and ~postgres/.pgpass, told apart by name.
func (f *Facts) readFiles(b64 string) error {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return fmt.Errorf("facts: files: %w", err)
	}
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("facts: files: %w", err)
		}
		data, err := io.ReadAll(io.LimitReader(tr, 16<<20))
		if err != nil {
			return fmt.Errorf("facts: files: %w", err)
		}
		switch name := path.Base(hdr.Name); name {
		case "postgresql.auto.conf":
			f.AutoConf = string(data)
		case ".pgpass":
			f.PgPass = string(data)
		default:
			f.Files[name] = data
		}
	}
}

func (f *Facts) parseSQL(key, val string) {
	switch key {
	case "running":
		f.Running = true
	case "server_version":
		f.ServerVersion, _ = strconv.Atoi(val)
	case "recovery":
		f.InRecovery = val == "t" || val == "true"
	case "data_checksums":
		f.DataChecksums = val == "on"
	case "role":
		parts := strings.SplitN(val, ":", 3)
		if len(parts) == 3 {
			f.Role = &RoleFacts{Replication: parts[0] == "t" || parts[0] == "true", Login: parts[1] == "t" || parts[1] == "true", Verifier: parts[2]}
		}
	case "slot":
		if i := strings.LastIndex(val, ":"); i > 0 {
			f.Slots[val[:i]] = val[i+1:] == "t" || val[i+1:] == "true"
		}
	case "wal_receiver":
		// status:sender_host:sender_port — the host may be IPv6.
		first, last := strings.Index(val, ":"), strings.LastIndex(val, ":")
		if first >= 0 && last > first {
			port, _ := strconv.Atoi(val[last+1:])
			f.WALReceiver = &WALReceiver{Status: val[:first], SenderHost: val[first+1 : last], SenderPort: port}
		}
	case "pending_restart":
		f.PendingRestart = append(f.PendingRestart, val)
	case "db_size":
		f.DBSize, _ = strconv.ParseInt(val, 10, 64)
	case "user_databases":
		f.UserDatabases, _ = strconv.Atoi(val)
	case "replica":
		// application_name:client_addr:state — client_addr may be IPv6, so
		// the name is up to the first colon and the state after the last.
		first, last := strings.Index(val, ":"), strings.LastIndex(val, ":")
		if first >= 0 && last > first {
			f.ReplicationPeers = append(f.ReplicationPeers, ReplicationPeer{
				ApplicationName: val[:first], ClientAddr: val[first+1 : last], State: val[last+1:]})
		}
	}
}

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
