package main

import (
	"io"
	"text/tabwriter"

	"github.com/pgfleet/pgfleet/internal/termtext"
)

// Text output (tables, summaries, status) may quote what hosts said: each
// function that writes it escapes what it writes with termtext.NewWriter,
// and its tables with newTable.

// table is a tabwriter whose cells are escaped before they are measured,
// so that a cell with an escaped control character keeps its column.
type table struct {
	io.Writer
	tw *tabwriter.Writer
}

func newTable(w io.Writer) table {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	return table{termtext.NewWriter(tw), tw}
}

// Flush writes the table out.
func (t table) Flush() error { return t.tw.Flush() }
