package steps

import (
	"context"
	"strings"
	"testing"

	"github.com/pgfleet/pgfleet/internal/remote/sshtest"
)

// The runner names the host and the step of a failure, once; the step and
// internal/remote below it say only what failed.
func TestFailureNamesTheHostOnce(t *testing.T) {
	r, h, _ := scriptedHost(t, sshtest.Rules(
		sshtest.On(`^pg_ctlcluster 15 main start$`, sshtest.Reply{Exit: 1,
			Stderr: "Job for postgresql@15-main.service failed because the control process exited with error code.\n"}),
	))
	h.Facts = &State{} // down
	r.Apply(context.Background(), []Step{StartPrimary{}})

	err := r.Err()
	if err == nil {
		t.Fatal("a start that fails did not fail")
	}
	const want = "h1: start: start PostgreSQL: sudo -n -H -- pg_ctlcluster 15 main start: exit status 1: Job for postgresql@15-main.service failed"
	if !strings.HasPrefix(err.Error(), want) || strings.Count(err.Error(), "h1") != 1 {
		t.Errorf("error:\n%s\nwant it to begin\n%s\nand name h1 once", err, want)
	}
	res := r.Results()
	if len(res) != 1 || res[0].Host != "h1" || res[0].Step != "start" || res[0].Status != Failed ||
		res[0].Error != err.Error() || strings.Contains(Cause(res[0].Err), "h1") {
		t.Errorf("results %+v, want start failed on h1, the host named in Host and once in Error, not in the cause", res)
	}
}

// A connection that fails at the state probe is reported the same way
// through the whole pipeline of up, each later step skipped.
func TestConnectFailureNamesTheHostOnce(t *testing.T) {
	t.Setenv(passwordEnv, "pw")
	r, h, _ := scriptedHost(t, sshtest.Rules(
		// The probe run under the lock fails too: the probe is run again.
		sshtest.On(`^bash -c .*pgfleet-lock `, sshtest.Reply{Stdout: "locked\npgfleet-facts-end 1\n", Hold: true}),
		sshtest.On(`^sh -c # pgfleet state probe`, sshtest.Reply{Exit: 1, Stderr: "sudo: a password is required\n"}),
	))
	defer r.Close()
	// Connect{} would dial again: the scripted host is dialled already.
	list := Up()
	if _, ok := list[0].(Connect); !ok {
		t.Fatalf("up begins with %s, not connect", list[0].Name())
	}
	r.Apply(context.Background(), list[1:])
	if h.Facts != nil {
		t.Fatalf("facts read: %+v", h.Facts)
	}
	err := r.Err()
	if err == nil || !strings.HasPrefix(err.Error(), "h1: connect: check sudo: sudo needs a password") || strings.Count(err.Error(), "h1") != 1 {
		t.Errorf("error %q, want the connect failure, h1 named once", err)
	}
	for _, res := range r.Results() {
		if (res.Step == "connect") != (res.Status == Failed) || (res.Status != Failed && res.Status != Skipped) {
			t.Errorf("%s %s: %s, want connect failed and the rest skipped", res.Host, res.Step, res.Status)
		}
	}
}
