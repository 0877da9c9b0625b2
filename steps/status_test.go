package steps

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/internal/remote"
	"github.com/pgfleet/pgfleet/inventory"
)

func TestDevTiming(t *testing.T) {
	path := os.Getenv("DEV_INV")
	if path == "" {
		t.Skip()
	}
	inv, err := inventory.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := NewRun(inv, Options{Forks: 10})
	ctx := context.Background()
	for _, h := range r.Hosts[:1] {
		for i := 0; i < 3; i++ {
			t0 := time.Now()
			cfg := sshConfig(h.Name, h.Address, h.SSH, r.Opts)
			c, err := remote.Dial(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			t1 := time.Now()
			c.Run(ctx, remote.Cmd{Args: []string{"true"}})
			t2 := time.Now()
			c.Run(ctx, remote.Cmd{Args: []string{"true"}, As: "root"})
			t3 := time.Now()
			h.Conn = c
			ob := r.observe(ctx, h, 5*time.Second)
			t4 := time.Now()
			gatherFacts(ctx, c, h.Layout, 15, 5432, "replicator")
			t5 := time.Now()
			t.Logf("dial+sudo %v, true %v, sudo true %v, observe %v (%v), facts %v", t1.Sub(t0), t2.Sub(t1), t3.Sub(t2), t4.Sub(t3), ob.server != nil, t5.Sub(t4))
			c.Close()
			h.Conn = nil
		}
	}
}
