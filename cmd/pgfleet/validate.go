package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pgfleet/pgfleet/inventory"
	"github.com/pgfleet/pgfleet/steps"
)

var validateHelp = help{
	use:   "validate INVENTORY",
	short: "Check an inventory file without touching any host",
	long: `Validate parses an inventory and checks it, without connecting to any host:
it touches no network and reads no file besides the inventory. Run it before
up, status or check, or in CI on every change to the inventory.

It reports every problem at once, one per line, as FILE:LINE:COLUMN: KEY: what
is wrong and what to do:
  - YAML syntax, unknown keys (typos, with the closest known key), duplicate
    keys, missing values and values of the wrong type;
  - every cluster has a primary; every host it names is defined under hosts;
    a host belongs to at most one cluster and has one role in it;
  - no two hosts share an address and SSH port;
  - PostgreSQL version 12 to 18; replication method basebackup or tar; exactly
    one of password_env and password_file;
  - names and values that end up in shell commands, SQL or config files:
    host and cluster names, the replication user, setting names, addresses,
    ports, data_dir, and single-line hba and setting values.

It warns, on stderr, of hba lines that are valid but let too much in: the
method trust, or an address that matches every client (0.0.0.0/0, ::/0,
all). A warning does not change the exit code.

It does not check that files (identity_file, password_file, templates_dir)
exist, that the password is set, or that hosts are reachable: pgfleet check
does that. See docs/inventory.md for every key and its default.

With --explain it also reads the OpenSSH client config (--ssh-config, the
host's ssh.config_file, or ~/.ssh/config if it exists) and shows, per host,
each SSH setting pgfleet would use and where it comes from: inventory,
ssh_config FILE or default. It still touches no network.

With --output json, the result is one JSON object on stdout:
  {"valid":true,"clusters":["main"],"hosts":3}
  {"valid":true,...,"warnings":[{"file":...,"line":...,"column":...,"path":...,"message":...}]}
  {"valid":true,...,"ssh":[{"host":"db1","settings":[{"setting":"user","value":"ops","from":"inventory"}]}]}  (--explain)
  {"valid":false,"errors":[{"file":...,"line":...,"column":...,"path":...,"message":...}]}

Exit codes:
  0  the inventory is valid
  2  the inventory is invalid or cannot be read, or bad usage`,
}

func newValidateCommand(g *globalOptions) *cobra.Command {
	var explain bool
	cmd := validateHelp.command()
	cmd.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usageError{fmt.Errorf("validate takes one inventory file, not %d arguments", len(args))}
		}
		return nil
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return runValidate(g, cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], explain)
	}
	cmd.Flags().BoolVar(&explain, "explain", false, "also show, per host, each SSH setting and where it comes from (reads ssh_config; no network)")
	return cmd
}

// inventoryError is an invalid inventory: every problem, one per line.
type inventoryError struct {
	path string
	errs inventory.Errors
}

func (e inventoryError) Error() string {
	return fmt.Sprintf("%s: %s:\n  %s", e.path, countProblems(len(e.errs)),
		strings.ReplaceAll(e.errs.Error(), "\n", "\n  "))
}

func (e inventoryError) Unwrap() error { return e.errs }

func countProblems(n int) string {
	if n == 1 {
		return "1 problem"
	}
	return fmt.Sprintf("%d problems", n)
}

// loadInventory loads and validates the inventory for any command. Every
// error it returns is a usageError (exit code 2); an invalid inventory
// unwraps to inventory.Errors, for commands that print the list themselves.
func loadInventory(path string) (*inventory.Inventory, error) {
	inv, err := inventory.Load(path)
	if err != nil {
		var errs inventory.Errors
		if errors.As(err, &errs) {
			return nil, usageError{inventoryError{path: path, errs: errs}}
		}
		return nil, usageError{err}
	}
	return inv, nil
}

type validateResult struct {
	Valid    bool               `json:"valid"`
	Clusters []string           `json:"clusters,omitempty"`
	Hosts    int                `json:"hosts,omitempty"`
	Errors   []*inventory.Error `json:"errors,omitempty"`
	Warnings []*inventory.Error `json:"warnings,omitempty"`
	SSH      []steps.HostSSH    `json:"ssh,omitempty"`
}

func runValidate(g *globalOptions, stdout, stderr io.Writer, path string, explain bool) error {
	inv, err := loadInventory(path)
	if err != nil {
		var errs inventory.Errors
		if !errors.As(err, &errs) {
			// Unreadable: report it like any other problem with the file.
			errs = inventory.Errors{{File: path, Msg: errors.Unwrap(err).Error()}}
		}
		if g.output == "json" {
			if err := json.NewEncoder(stdout).Encode(validateResult{Errors: errs}); err != nil {
				return err
			}
			return silentError{exitUsage}
		}
		var ie inventoryError
		if !errors.As(err, &ie) {
			return err
		}
		for _, e := range errs {
			fmt.Fprintln(stderr, e)
		}
		return &steps.Hint{
			Err:  usageError{fmt.Errorf("%s: %s", path, countProblems(len(errs)))},
			Hint: "fix the lines above and run pgfleet validate again; docs/inventory.md describes every key",
		}
	}

	names := make([]string, len(inv.Clusters))
	for i, c := range inv.Clusters {
		names[i] = c.Name
	}
	var ssh []steps.HostSSH
	if explain {
		if ssh, err = explainSSH(g, inv); err != nil {
			return err
		}
	}
	if g.output == "json" {
		return json.NewEncoder(stdout).Encode(validateResult{Valid: true, Clusters: names, Hosts: len(inv.Hosts), Warnings: inv.Warnings, SSH: ssh})
	}
	writeInventoryWarnings(stderr, inv)
	_, err = fmt.Fprintf(stdout, "%s: ok — %s, %s\n", path,
		plural(len(inv.Clusters), "cluster"), plural(len(inv.Hosts), "host"))
	writeSSHText(stdout, ssh)
	return err
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// writeInventoryWarnings prints the inventory's warnings as compilers do,
// so that editors can jump to them: "FILE:LINE:COLUMN: warning: KEY: ...".
func writeInventoryWarnings(w io.Writer, inv *inventory.Inventory) {
	for _, e := range inv.Warnings {
		fmt.Fprintf(w, "%s:%d:%d: warning: %s: %s\n", e.File, e.Line, e.Column, e.Path, e.Msg)
	}
}
