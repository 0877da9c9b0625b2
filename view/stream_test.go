package view

import (
	"strings"
	"testing"

	"github.com/pgfleet/pgfleet/internal/probe"
)

func TestStreamsHalves(t *testing.T) {
	up := primary(1, "0/5000000", "h2").State.Server
	catchingUp := &probe.Server{Replication: []probe.ReplicationState{{ApplicationName: "h2", State: "catchup"}}}
	for _, tc := range []struct {
		name     string
		upstream *probe.Server
		want     bool
	}{
		{"streaming", up, true},
		{"catching up", catchingUp, false},
		{"absent", primary(1, "0/5000000").State.Server, false},
		{"not running", nil, false},
	} {
		if got := SeenStreaming(tc.upstream, "h2"); got != tc.want {
			t.Errorf("SeenStreaming, %s: %v, want %v", tc.name, got, tc.want)
		}
	}
	for _, tc := range []struct {
		name    string
		standby *probe.Server
		want    bool
	}{
		{"streaming", standby(1, "0/5000000", "0/5000000", "streaming").State.Server, true},
		{"starting", standby(1, "0/5000000", "0/5000000", "startup").State.Server, false},
		{"no receiver", standby(1, "0/5000000", "0/5000000", "").State.Server, false},
		{"a primary", primary(1, "0/5000000").State.Server, false},
		{"not running", nil, false},
	} {
		if got := Receives(tc.standby); got != tc.want {
			t.Errorf("Receives, %s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// status shows a replica whose upstream was not read as streaming when its
// own WAL receiver streams; when the upstream was read, both ends must
// see the stream.
func TestStreamsAsRead(t *testing.T) {
	c := testCluster(t, testInventory)
	tests := []struct {
		name    string
		members map[string]Input
		want    bool
	}{
		{"both ends see it", map[string]Input{"h1": primary(1, "0/5000000", "h2"), "h2": standby(1, "0/5000000", "0/5000000", "streaming")}, true},
		{"the upstream read, without it", map[string]Input{"h1": primary(1, "0/5000000"), "h2": standby(1, "0/5000000", "0/5000000", "streaming")}, false},
		{"the upstream stopped", map[string]Input{"h1": stopped(1, false), "h2": standby(1, "0/5000000", "0/5000000", "streaming")}, false},
		{"the upstream not answering", map[string]Input{"h1": unreachable, "h2": standby(1, "0/5000000", "0/5000000", "streaming")}, true},
		{"the upstream not in the run", map[string]Input{"h2": standby(1, "0/5000000", "0/5000000", "streaming")}, true},
		{"the upstream not in the run, the receiver starting", map[string]Input{"h2": standby(1, "0/5000000", "0/5000000", "startup")}, false},
		{"the standby not read", map[string]Input{"h1": primary(1, "0/5000000", "h2"), "h2": unreachable}, false},
	}
	for _, tc := range tests {
		if got := Of(c, tc.members).Member("h2").StreamsAsRead(); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	if Of(c, map[string]Input{"h1": primary(1, "0/5000000")}).Member("h1").StreamsAsRead() {
		t.Error("the primary streams")
	}
}

// A member's Sender is found by its WAL receiver's address and port: a
// member's replication address or address, on the cluster's port.
func TestSender(t *testing.T) {
	src := strings.Replace(testInventory, "h2: {address: 10.0.0.2}", "h2: {address: 10.0.0.2, replication_address: 192.168.0.2}", 1)
	c := testCluster(t, src)
	from := func(host string, port int) Input {
		i := standby(1, "0/5000000", "0/5000000", "streaming")
		i.State.Server.Receiver.SenderHost, i.State.Server.Receiver.SenderPort = host, port
		return i
	}
	for _, tc := range []struct {
		name string
		in   Input
		want string
	}{
		{"its primary's address", from("10.0.0.1", 5432), "h1"},
		{"another member's replication address", from("192.168.0.2", 5432), "h2"},
		{"port not known", from("10.0.0.1", 0), "h1"},
		{"another port", from("10.0.0.1", 5433), ""},
		{"no member", from("10.9.9.9", 5432), ""},
		{"no receiver", standby(1, "0/5000000", "0/5000000", ""), ""},
	} {
		v := Of(c, map[string]Input{"h1": primary(1, "0/5000000"), "h3": tc.in})
		got := ""
		if s := v.Member("h3").Sender; s != nil {
			got = s.Name()
		}
		if got != tc.want {
			t.Errorf("%s: sender %q, want %q", tc.name, got, tc.want)
		}
	}
}
