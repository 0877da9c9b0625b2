package steps

import (
	"fmt"
	"path"

	"github.com/pgfleet/pgfleet/inventory"
)

// Layout is where a PostgreSQL cluster's files live on a host and how it is
// named. Debian's postgresql-common layout is the one pgfleet knows today;
// other families (RHEL's /var/lib/pgsql/V/data) would be another Layout.
type Layout interface {
	ConfigDir() string
	DataDir() string
	BinDir() string
	SocketDir() string
	PIDFile() string
	LogFile() string // the server's log, where pg_ctlcluster sends it
	// InstalledGlob matches the postgres binary of every installed major
	// version, with its one * where the version is.
	InstalledGlob() string
	ClusterName() string // cluster_name, as Debian sets it: "15/main"
	Package() string     // the package that installs the server
	Unit() string        // the cluster's systemd unit: "postgresql@15-main"
}

// debian is postgresql-common's layout for cluster "main" of version V.
type debian struct {
	version int
	dataDir string // overridden by the inventory, or the default
}

func newDebian(version int, dataDir string) debian {
	if dataDir == "" {
		dataDir = inventory.DefaultDataDir(version)
	}
	return debian{version: version, dataDir: dataDir}
}

func (d debian) ConfigDir() string { return fmt.Sprintf("/etc/postgresql/%d/main", d.version) }
func (d debian) DataDir() string   { return d.dataDir }
func (d debian) BinDir() string    { return fmt.Sprintf("/usr/lib/postgresql/%d/bin", d.version) }
func (d debian) SocketDir() string { return "/var/run/postgresql" }
func (d debian) PIDFile() string   { return fmt.Sprintf("%s/%d-main.pid", d.SocketDir(), d.version) }
func (d debian) LogFile() string {
	return fmt.Sprintf("/var/log/postgresql/postgresql-%d-main.log", d.version)
}
func (d debian) InstalledGlob() string { return "/usr/lib/postgresql/*/bin/postgres" }
func (d debian) ClusterName() string   { return fmt.Sprintf("%d/main", d.version) }
func (d debian) Package() string       { return fmt.Sprintf("postgresql-%d", d.version) }
func (d debian) Unit() string          { return fmt.Sprintf("postgresql@%d-main", d.version) }

// bin is the path of one of the server's programs.
func bin(l Layout, name string) string { return path.Join(l.BinDir(), name) }
