package main

import "github.com/spf13/cobra"

// help is a command's text: its use line, its summary, its help and its
// examples.
type help struct {
	use, short, long, example string
}

// command is a command with this help.
func (h help) command() *cobra.Command {
	return &cobra.Command{Use: h.use, Short: h.short, Long: h.long, Example: h.example}
}

// inventoryCommand is a command with this help that takes one INVENTORY
// and runs run on its path.
func (h help) inventoryCommand(run func(cmd *cobra.Command, path string) error) *cobra.Command {
	cmd := h.command()
	cmd.Args = exactArgs(1, "INVENTORY")
	cmd.RunE = func(cmd *cobra.Command, args []string) error { return run(cmd, args[0]) }
	return cmd
}
