// Package probe holds the state probe, the read-only script that reads a
// host's system, cluster files and server in one round trip, and State,
// its answer. It sits below everything that judges a host's state: it
// knows nothing of runs, hosts or inventories.
//
// It imports no pgfleet package but internal/pgsql.
package probe

import (
	"archive/tar"
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/pgfleet/pgfleet/internal/pgsql"
)

// Script is the state probe, a POSIX shell script run as root (see its
// comment for its arguments).
//
//go:embed state.sh
var Script string

// The apt files pgfleet writes for the PGDG repository, which the probe
// reads back (State.PGDGSources and PGDGKeyring).
const (
	// PGDGKeyring is where pgfleet writes the repository's signing key.
	PGDGKeyring = "/etc/apt/keyrings/pgfleet-pgdg.asc"
	// PGDGSourcesFile is pgfleet's apt source entry for the repository.
	PGDGSourcesFile = "/etc/apt/sources.list.d/pgfleet-pgdg.list"
)

// State is what the state probe read of one host in one round trip: the
// system, the cluster's files, and the server when it answers SQL. Steps
// decide from it whether they have work, status and verify judge it, and
// check reports it. After a step changes a host, the runner reads the
// state again rather than patching it.
type State struct {
	OSID           string `json:"os_id"`
	OSVersion      string `json:"os_version"`
	OSCodename     string `json:"os_codename"`
	PackageManager string `json:"pkg"`       // "apt", or "" when none is known
	Installed      []int  `json:"installed"` // PostgreSQL major versions installed
	PostgresHome   string `json:"postgres_home"`
	// Packages are the installed server packages' versions, by name
	// ("postgresql-15": "15.14-0+deb12u1"): where a package came from
	// shows in its version (packageOrigin).
	Packages map[string]string `json:"packages"`
	// PGDGSources and PGDGKeyring are pgfleet's apt source entry for the
	// PGDG repository and its key, as the host has them; empty when it
	// has none.
	PGDGSources string `json:"-"`
	PGDGKeyring []byte `json:"-"`

	DataVersion   int  `json:"data_version"` // PG_VERSION of the data directory, 0 if none
	DataNonEmpty  bool `json:"data_nonempty"`
	StandbySignal bool `json:"standby_signal"`
	// CloneIncomplete: a clone into the data directory began and did not
	// finish (its marker DATADIR.pgfleet-cloning is there). What the
	// directory holds is a partial copy, never writes of its own.
	CloneIncomplete bool `json:"clone_incomplete"`
	// DataLink is where the data directory leads when it is a symbolic
	// link; DataMountPoint says it is the root of a file system.
	DataLink       string      `json:"data_link"`
	DataMountPoint bool        `json:"data_mountpoint"`
	DiskFreeKB     int64       `json:"disk_free_kb"` // on the file system of the data directory
	Aside          []AsideData `json:"aside"`        // data directories moved aside, oldest name first

	Files    map[string][]byte `json:"-"` // files of the configuration directory, by base name
	AutoConf string            `json:"-"` // postgresql.auto.conf of the data directory
	PgPass   string            `json:"-"` // ~postgres/.pgpass
	// TLSKeySHA256 is the SHA-256 of the server's TLS key (TLSDir), ""
	// when there is none: the key itself is not read.
	TLSKeySHA256 string `json:"tls_key_sha256"`

	// PostmasterPID is the postmaster's pid when postmaster.pid names a
	// live postgres process, 0 otherwise: a server can run and still
	// refuse SQL (starting up, shutting down, out of connections).
	PostmasterPID int `json:"postmaster_pid"`
	// Server is what the server answered; nil when none did.
	Server *Server `json:"server"`
	// SQLError is psql's message when a live postmaster did not answer,
	// and SQLExit its exit code (2: no connection).
	SQLError string `json:"-"`
	SQLExit  int    `json:"sql_exit"`
	// SQLWarnings are the messages psql printed beside the answer of a
	// server that answered: warnings and notices (a database's collation
	// version that is not the system's, after a C library upgrade), one per
	// message, each with its DETAIL and HINT lines, as psql printed them.
	// A server that warns still answers.
	SQLWarnings []string `json:"-"`
	// Control is the control file, read when no server answered and the
	// data directory holds a cluster.
	Control *Control `json:"control"`
	// Systemd is what systemd says of the cluster's unit when it is the
	// host's init (PID 1); nil when it is not.
	Systemd *Systemd `json:"systemd"`
}

// Systemd is how systemd sees a cluster: Debian runs cluster V/main as the
// unit postgresql@V-main, which pg_ctlcluster hands start, stop and restart
// over to, and which postgresql.service starts at boot when the cluster's
// start.conf says auto.
type Systemd struct {
	Unit string `json:"unit"` // postgresql@15-main
	// Active is the unit's ActiveState: active, inactive, failed,
	// activating, ...
	Active string `json:"active"`
	// UnitFile and ServiceFile are the UnitFileState of the unit and of
	// postgresql.service: enabled, disabled, enabled-runtime (the unit,
	// wanted by postgresql.service through Debian's generator), masked...
	UnitFile    string `json:"unit_file"`
	ServiceFile string `json:"service_file"`
}

// Failed says systemd marked the cluster's unit failed: the server died,
// or did not start, outside a stop.
func (s *Systemd) Failed() bool { return s != nil && s.Active == "failed" }

// StartsAtBoot says whether systemd starts the cluster when the host
// boots: its unit is enabled, or postgresql.service is and the cluster's
// start.conf says auto (startConf is its content; none means auto).
func (s *Systemd) StartsAtBoot(startConf []byte) bool {
	return s.UnitFile == "enabled" || s.ServiceFile == "enabled" && StartConf(startConf) == "auto"
}

// StartConf is the word of a cluster's start.conf (auto, manual or
// disabled); "auto" when there is none, as for pg_ctlcluster.
func StartConf(content []byte) string {
	word := "auto"
	for _, line := range strings.Split(string(content), "\n") {
		line, _, _ = strings.Cut(line, "#")
		if f := strings.Fields(line); len(f) > 0 {
			word = f[0]
		}
	}
	return word
}

// Server is a running server's answer to the probe's one query.
type Server struct {
	Version      string   `json:"version"` // "15.18"
	InRecovery   bool     `json:"in_recovery"`
	SystemID     string   `json:"system_id"`
	Timeline     int      `json:"timeline"`    // a primary's current one; a standby's received one, else its last restartpoint's
	LSN          string   `json:"lsn"`         // a primary's current LSN; a standby's last replayed one
	ReceiveLSN   string   `json:"receive_lsn"` // a standby's last received LSN
	ReplayDelay  *float64 `json:"replay_delay"`
	ReplayPaused bool     `json:"replay_paused"`

	Role           *Role              `json:"role"` // the replication role, nil if absent
	Receiver       *WALReceiver       `json:"receiver"`
	Replication    []ReplicationState `json:"replication"` // pg_stat_replication, by application name
	Slots          []Slot             `json:"slots"`       // physical slots, by name
	PendingRestart []string           `json:"pending_restart"`
	// RestartParams are the parameters a change of which takes a restart
	// (pg_settings.context is postmaster), by name.
	RestartParams []string `json:"restart_params"`
	// OldestWAL is the oldest WAL segment file in a primary's pg_wal
	// ("000000010000000A0000002F"): a standby that needs older WAL cannot
	// stream it. "" on a standby.
	OldestWAL      string `json:"oldest_wal"`
	WALSegmentSize int64  `json:"wal_segment_size"` // bytes
	DBSize         int64  `json:"db_size"`
	UserDatabases  int    `json:"user_databases"`
	// DataChecksums and WALLogHints: pg_rewind needs one of them to turn
	// a former primary into a standby of another member.
	DataChecksums       bool `json:"data_checksums"`
	WALLogHints         bool `json:"wal_log_hints"`
	MaxReplicationSlots int  `json:"max_replication_slots"`
}

// Role describes the replication role on a server.
type Role struct {
	Replication bool   `json:"replication"`
	Login       bool   `json:"login"`
	Verifier    string `json:"verifier"` // the stored SCRAM verifier; never the password
	Superuser   bool   `json:"superuser"`
	// Rewind says the role may run the functions with which pg_rewind
	// reads a source server's files (rewindFunctions).
	Rewind bool `json:"rewind"`
}

// WALReceiver is a standby's pg_stat_wal_receiver row.
type WALReceiver struct {
	Status     string `json:"status"`
	SenderHost string `json:"sender_host"`
	SenderPort int    `json:"sender_port"`
	SlotName   string `json:"slot_name"`
}

// ReplicationState is one row of a primary's pg_stat_replication.
type ReplicationState struct {
	ApplicationName string `json:"application_name"`
	ClientAddr      string `json:"client_addr"`
	State           string `json:"state"`
	SyncState       string `json:"sync_state"`
	SentLSN         string `json:"sent_lsn"`
	WriteLSN        string `json:"write_lsn"`
	FlushLSN        string `json:"flush_lsn"`
	ReplayLSN       string `json:"replay_lsn"`
	SSL             bool   `json:"ssl"` // the connection is encrypted (pg_stat_ssl)
}

// Slot is a physical replication slot.
type Slot struct {
	Name          string `json:"name"`
	Active        bool   `json:"active"`
	RestartLSN    string `json:"restart_lsn"`
	WALStatus     string `json:"wal_status"`     // reserved, extended, unreserved, lost
	RetainedBytes *int64 `json:"retained_bytes"` // WAL kept for it: the server's LSN minus restart_lsn
}

// Control is what pg_controldata reads of a cluster's control file.
type Control struct {
	SystemID string `json:"system_id"`
	Timeline int    `json:"timeline"` // of the latest checkpoint
	State    string `json:"state"`    // "in production", "shut down", "in archive recovery", ...
	// Checkpoint is the latest checkpoint's location ("0/3000028"), ""
	// when not read: after a clean shutdown, where the shutdown
	// checkpoint's record begins, the last record of the cluster's WAL.
	Checkpoint string `json:"checkpoint"`
	// WALSegmentSize is the size of the cluster's WAL segments in bytes.
	WALSegmentSize int64 `json:"wal_segment_size"`
	// LastWAL is, for a standby's data, the newest segment file of its
	// pg_wal that holds that segment's WAL ("" if none does): its WAL ends
	// there. LastWALFull says the segment's last page is written too, so
	// that what it needs next may be the segment after it.
	LastWAL     string `json:"last_wal"`
	LastWALFull bool   `json:"last_wal_full"`
}

// AsideData is a data directory pgfleet moved aside (DATADIR.pgfleet-TIME).
type AsideData struct {
	Path  string `json:"path"`
	MTime int64  `json:"mtime"` // seconds since the epoch
}

// Running says whether a server answered SQL.
func (s *State) Running() bool { return s.Server != nil }

// HasVersion says whether PostgreSQL major version v is installed.
func (s *State) HasVersion(v int) bool {
	for _, i := range s.Installed {
		if i == v {
			return true
		}
	}
	return false
}

// SystemID is the cluster's system identifier, "" when unknown.
func (s *State) SystemID() string {
	if s.Server != nil {
		return s.Server.SystemID
	}
	if s.Control != nil {
		return s.Control.SystemID
	}
	return ""
}

// Timeline is the cluster's timeline, 0 when unknown: the server's when
// it answers, else the latest checkpoint's.
func (s *State) Timeline() int {
	if s.Server != nil {
		return s.Server.Timeline
	}
	if s.Control != nil {
		return s.Control.Timeline
	}
	return 0
}

// LostStandbySignal says whether data without standby.signal was a
// standby's when its server last ran: the control file says it stopped in
// recovery, or stopped during archive recovery (a standby that crashed; a
// primary's crash recovery says "in crash recovery"), and no server runs
// it now. Such data holds no writes
// of its own; a server started on it without the signal would have been
// promoted, and would say so.
func (s *State) LostStandbySignal() bool {
	return !s.StandbySignal && s.Server == nil && s.PostmasterPID == 0 &&
		s.Control != nil && (s.Control.State == "shut down in recovery" || s.Control.State == "in archive recovery")
}

// WALNeeded is the LSN from which a standby needs WAL from its primary,
// ok false when that is not known: for a server that answers, its WAL
// receiver's last received LSN (set, once the startup process has asked
// for streaming, to where it asked even when no WAL came); for one that
// does not, where the WAL of its own pg_wal ends. A standby that still
// replays WAL of its own pg_wal has not asked yet: not known.
func (s *State) WALNeeded() (lsn uint64, ok bool) {
	switch {
	case s.Server != nil:
		if !s.Server.InRecovery || s.Server.ReceiveLSN == "" {
			return 0, false
		}
		lsn, err := pgsql.ParseLSN(s.Server.ReceiveLSN)
		return lsn, err == nil
	case s.Control != nil && s.Control.LastWAL != "":
		lsn, ok := SegmentStart(s.Control.LastWAL, s.Control.WALSegmentSize)
		if ok && s.Control.LastWALFull {
			lsn += uint64(s.Control.WALSegmentSize)
		}
		return lsn, ok
	}
	return 0, false
}

// OldestWAL is the LSN at which the oldest WAL a primary still holds in
// its pg_wal begins; ok false when it is not known.
func (s *State) OldestWAL() (lsn uint64, ok bool) {
	if s.Server == nil || s.Server.InRecovery {
		return 0, false
	}
	return SegmentStart(s.Server.OldestWAL, s.Server.WALSegmentSize)
}

// SegmentStart is the LSN at which the WAL segment file name
// (TIMELINE, then the LSN's high 32 bits, then the segment within them,
// 8 hex digits each) begins, for segments of size bytes.
func SegmentStart(name string, size int64) (uint64, bool) {
	if len(name) != 24 || size <= 0 || size&(size-1) != 0 || size > 1<<30 {
		return 0, false
	}
	hi, err1 := strconv.ParseUint(name[8:16], 16, 32)
	seg, err2 := strconv.ParseUint(name[16:24], 16, 32)
	if err1 != nil || err2 != nil || seg >= 1<<32/uint64(size) {
		return 0, false
	}
	return hi<<32 + seg*uint64(size), true
}

// ReplicationOf returns a replica's row in pg_stat_replication, nil if
// none. A replica can have two: its WAL stream, and a base backup's sender
// that outlived its client (a clone cut off by the network) under the same
// application name; the stream is the one that tells how it replicates.
func (s *Server) ReplicationOf(name string) *ReplicationState {
	var found *ReplicationState
	for i := range s.Replication {
		r := &s.Replication[i]
		if r.ApplicationName != name {
			continue
		}
		if found == nil || found.State == "backup" && r.State != "backup" {
			found = r
		}
	}
	return found
}

// Slot returns the server's physical slot of that name, nil if none.
func (s *Server) Slot(name string) *Slot {
	for i := range s.Slots {
		if s.Slots[i].Name == name {
			return &s.Slots[i]
		}
	}
	return nil
}

// Decode reads the state probe's JSON document.
func Decode(out []byte) (*State, error) {
	var doc struct {
		State
		Files    []byte `json:"files"`     // a tar, base64 in the JSON
		SQLError []byte `json:"sql_error"` // base64 in the JSON
		Warnings []byte `json:"sql_warnings"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &doc); err != nil {
		return nil, fmt.Errorf("read the state probe's answer: %w", err)
	}
	s := doc.State
	s.SQLError = string(bytes.TrimSpace(doc.SQLError))
	s.SQLWarnings = splitMessages(string(doc.Warnings))
	s.Files = map[string][]byte{}
	if err := s.readFiles(doc.Files); err != nil {
		return nil, err
	}
	return &s, nil
}

// severities are the words with which psql begins a server's message
// (as the server's lc_messages words it in English) and its own.
var severities = []string{"WARNING:", "NOTICE:", "INFO:", "LOG:", "DEBUG:", "ERROR:", "FATAL:", "PANIC:", "psql:"}

// splitMessages cuts psql's messages apart: each begins with its
// severity, and its DETAIL, HINT and CONTEXT lines follow it. Text before
// the first severity, or messages in another language, stay in one; nil
// when there is none.
func splitMessages(text string) []string {
	var msgs []string
	var cur []string
	flush := func() {
		if m := strings.TrimSpace(strings.Join(cur, "\n")); m != "" {
			msgs = append(msgs, m)
		}
		cur = nil
	}
	for _, line := range strings.Split(text, "\n") {
		for _, sev := range severities {
			if strings.HasPrefix(line, sev) {
				flush()
				break
			}
		}
		cur = append(cur, line)
	}
	flush()
	return msgs
}

// readFiles takes the probe's files: a tar of the configuration files,
// postgresql.auto.conf, ~postgres/.pgpass and the PGDG repository's files,
// told apart by name.
func (s *State) readFiles(raw []byte) error {
	if len(raw) == 0 {
		return nil
	}
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read the state probe's files: %w", err)
		}
		data, err := io.ReadAll(io.LimitReader(tr, 16<<20))
		if err != nil {
			return fmt.Errorf("read the state probe's files: %w", err)
		}
		switch name := path.Base(hdr.Name); {
		case hdr.Name == PGDGSourcesFile:
			s.PGDGSources = string(data)
		case hdr.Name == PGDGKeyring:
			s.PGDGKeyring = data
		case name == "postgresql.auto.conf":
			s.AutoConf = string(data)
		case name == ".pgpass":
			s.PgPass = string(data)
		default:
			s.Files[name] = data
		}
	}
}
