package status

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pgfleet/pgfleet/internal/pgsql"
	"github.com/pgfleet/pgfleet/inventory"
)

// Connect is how applications reach a cluster's primary, whichever member
// it is: every member of the inventory in one connection string, primary
// first, and libpq keeps the first that accepts writes. It holds no user
// and no password.
type Connect struct {
	// Conninfo is the libpq key/value form:
	// host=a,b,c port=5432 dbname=postgres target_session_attrs=read-write connect_timeout=5
	Conninfo string `json:"conninfo"`
	// URI is the same as a libpq URI:
	// postgresql://a:5432,b:5432,c:5432/postgres?target_session_attrs=read-write&connect_timeout=5
	URI string `json:"uri"`
}

// clientDatabase is the database the connection strings name: the one
// every cluster has. Applications put their own.
const clientDatabase = "postgres"

// clientConnectTimeout is libpq's connect_timeout, in seconds, for each
// host in turn: a host that is down (no TCP answer at all) holds a client
// up that long before it tries the next. libpq's minimum is 2.
const clientConnectTimeout = 5

// connectTo builds the connection strings of cluster c from the inventory
// alone, not from what the hosts answered, so they are right while a host
// is down and list every member, those outside --limit too.
//
// Each host is given at address(name): where pgfleet reaches it (an
// ssh_config alias resolved), the network the hosts are managed and
// reached on. Not its replication_address: the inventory sets that for a
// private network between the hosts, which applications may not reach.
// Addresses are checked by the inventory (hostnames or IP addresses, no
// commas), which the host list relies on.
func connectTo(c *inventory.Cluster, address func(name string) string) Connect {
	port := strconv.Itoa(c.Postgres.Port)
	var hosts, netlocs []string
	for _, m := range members(c) {
		a := address(m.Name)
		if a == "" {
			a = m.Address
		}
		hosts = append(hosts, a)
		netlocs = append(netlocs, uriHost(a)+":"+port)
	}
	return Connect{
		Conninfo: fmt.Sprintf("host=%s port=%s dbname=%s target_session_attrs=read-write connect_timeout=%d",
			pgsql.QuoteConninfo(strings.Join(hosts, ",")), port, pgsql.QuoteConninfo(clientDatabase), clientConnectTimeout),
		URI: fmt.Sprintf("postgresql://%s/%s?target_session_attrs=read-write&connect_timeout=%d",
			strings.Join(netlocs, ","), uriEscape(clientDatabase, ""), clientConnectTimeout),
	}
}

// uriHost writes a host for a libpq URI: an IPv6 address in brackets, and
// every byte that is not unreserved percent-encoded (an IPv6 zone's % as
// %25), which libpq decodes.
func uriHost(a string) string {
	if strings.Contains(a, ":") {
		return "[" + uriEscape(a, ":") + "]"
	}
	return uriEscape(a, "")
}

// uriEscape percent-encodes every byte of s but the unreserved characters
// of RFC 3986 and those in keep.
func uriEscape(s, keep string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~', strings.IndexByte(keep, c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
