// Command labctl starts and removes a pgfleet lab of Debian hosts in Docker:
//
//	go run ./examples/lab/labctl up   [-hosts 3] [-release bookworm] [-init systemd] [-pg] [-dir .lab] [-name pgfleet-lab]
//	go run ./examples/lab/labctl down [-name pgfleet-lab]
//	go run ./examples/lab/labctl image [-release bookworm] [-init systemd] [-pg]
//
// -init systemd gives hosts whose PID 1 is systemd (sshd and PostgreSQL run
// as units) rather than sshd; -pg gives hosts with the release's PostgreSQL
// server package installed and no cluster rather than bare ones.
//
// `up` writes, into -dir, the private key the hosts accept, a known_hosts
// file with the hosts' real keys, the replication password and an inventory
// pgfleet can use as it is.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/pgfleet/pgfleet/internal/lab"
)

func main() {
	if len(os.Args) < 2 {
		usage(os.Stderr, 2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	switch os.Args[1] {
	case "-h", "-help", "--help", "help":
		usage(os.Stdout, 0)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	name := fs.String("name", "pgfleet-lab", "lab name (prefixes containers and the network)")
	hosts := fs.Int("hosts", 3, "number of hosts")
	release := fs.String("release", "bookworm", "Debian release: bullseye (PostgreSQL 13), bookworm (PostgreSQL 15) or trixie (PostgreSQL 17)")
	initSys := fs.String("init", "", "the hosts' PID 1: systemd, or empty for sshd itself")
	pg := fs.Bool("pg", false, "hosts with the release's PostgreSQL server package installed, and no cluster")
	dir := fs.String("dir", ".lab", "where to write the key, known_hosts and inventory")
	cache := fs.Bool("cache", true, "route the hosts' apt through the lab's package cache")
	aptrepo := fs.Bool("aptrepo", false, "also start an apt repository host in the PGDG layout, for postgres.repository: pgdg")
	fs.Parse(os.Args[2:])

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	switch os.Args[1] {
	case "image":
		img, err := lab.EnsureImage(ctx, lab.Flavour{Release: *release, Init: *initSys, Postgres: *pg}, logger)
		check(err)
		fmt.Println(img)
	case "up":
		abs, err := filepath.Abs(*dir)
		check(err)
		check(lab.Down(ctx, *name)) // a lab of the same name is replaced, not doubled
		l, err := lab.Up(ctx, lab.Options{Name: *name, Hosts: *hosts, Release: *release, Init: *initSys, Postgres: *pg,
			Dir: abs, Cache: *cache, Log: logger})
		check(err)
		fmt.Printf("lab %q is up: %d %s hosts (image %s) on network %s (%s)\n", l.Name, len(l.Hosts), l.Release, l.Image, l.Network, l.Subnet)
		for _, h := range l.Hosts {
			fmt.Printf("  %-4s %s\n", h.Name, h.Address)
		}
		cwd, _ := os.Getwd()
		rel := func(p string) string {
			if r, err := filepath.Rel(cwd, p); err == nil && !strings.HasPrefix(r, "..") {
				return r
			}
			return p
		}
		fmt.Printf("inventory:   %s\nkey:         %s\nknown_hosts: %s\n", rel(l.Inventory), rel(l.KeyFile), rel(l.KnownHosts))
		fmt.Printf("try:         ssh -i %s -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes %s@%s\n",
			rel(l.KeyFile), rel(l.KnownHosts), lab.User, l.Hosts[0].Address)
		if *aptrepo {
			r, err := l.StartAptRepo(ctx, logger)
			check(err)
			fmt.Printf("apt repo:    %s (%s, key %s)\n", r.URL, r.Suite, rel(r.KeyFile))
			fmt.Printf("pgdg:        add to the inventory, with postgres.repository: pgdg:  pgdg: {url: %s, key_file: %s}\n", r.URL, r.KeyFile)
		}
	case "down":
		check(lab.Down(ctx, *name))
		check(lab.RemoveCacheIfUnused(ctx))
		fmt.Printf("lab %q is down\n", *name)
	default:
		usage(os.Stderr, 2)
	}
}

func usage(w io.Writer, code int) {
	fmt.Fprint(w, `usage: labctl up|down|image [flags]
  up     start a lab, replacing one of the same name, and write its key,
         known_hosts and inventory
  down   remove a lab, and the package cache container once no lab is left
  image  build the lab host image of a release (and flavour) unless it is up
         to date
labctl COMMAND -h lists the command's flags
`)
	os.Exit(code)
}

func check(err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "labctl: error: %v\n", err)
		os.Exit(1)
	}
}
