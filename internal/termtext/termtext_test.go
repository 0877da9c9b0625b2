package termtext

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestEscape(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "could not connect to server", "could not connect to server"},
		{"newlines and tabs stay", "line 1\n\tline 2\n", "line 1\n\tline 2\n"},
		{"unicode stays", "données — 40 % ░█", "données — 40 % ░█"},
		{"CSI", "\x1b[2J\x1b[31mred", `\x1b[2J\x1b[31mred`},
		{"OSC 52 with BEL", "\x1b]52;c;cm0gLXJmIH4=\x07", `\x1b]52;c;cm0gLXJmIH4=\x07`},
		{"OSC 52 with ST", "\x1b]52;c;cm0gLXJmIH4=\x1b\\", `\x1b]52;c;cm0gLXJmIH4=\x1b\`},
		{"carriage return", "ok\rFATAL", `ok\x0dFATAL`},
		{"CRLF", "a\r\nb", "a\\x0d\nb"},
		{"bell, backspace, NUL", "\a\b\x00", `\x07\x08\x00`},
		{"DEL", "a\x7fb", `a\x7fb`},
		{"C1 CSI", "\u009b2J", `\u009b2J`},
		{"C1 range ends", "\u0080\u009f\u00a0", `\u0080\u009f` + "\u00a0"},
		{"C1 OSC and ST", "\u009d52;c;eA==\u009c", `\u009d52;c;eA==\u009c`},
		{"invalid UTF-8", "a\xffb\xc3", `a\xffb\xc3`},
		{"an 8-bit CSI byte alone", "\x9b2J", `\x9b2J`},
		{"escaped text is left alone", `\x1b[2J`, `\x1b[2J`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Escape(tc.in)
			if got != tc.want {
				t.Errorf("Escape(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if again := Escape(got); again != got {
				t.Errorf("Escape(Escape(%q)) = %q, want it unchanged", tc.in, again)
			}
		})
	}
}

func TestWriter(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	if NewWriter(w) != w {
		t.Error("NewWriter of a Writer wraps it again")
	}
	in := "db1\t\x1b]52;c;eA==\x07\rok\n"
	n, err := w.Write([]byte(in))
	if err != nil || n != len(in) {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(in))
	}
	if want := "db1\t\\x1b]52;c;eA==\\x07\\x0dok\n"; b.String() != want {
		t.Errorf("wrote %q, want %q", b.String(), want)
	}
}

// rawHandler writes records as they come, escaping nothing, as a text
// handler that trusts its input would.
type rawHandler struct {
	b      *strings.Builder
	prefix string
}

func (h rawHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h rawHandler) Handle(_ context.Context, r slog.Record) error {
	h.b.WriteString(h.prefix + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(h.b, " %s=%v", a.Key, a.Value)
		return true
	})
	h.b.WriteString("\n")
	return nil
}

func (h rawHandler) WithAttrs(as []slog.Attr) slog.Handler {
	for _, a := range as {
		h.prefix += fmt.Sprintf("%s=%v ", a.Key, a.Value)
	}
	return h
}

func (h rawHandler) WithGroup(name string) slog.Handler {
	h.prefix += name + ": "
	return h
}

func TestHandler(t *testing.T) {
	var b strings.Builder
	log := slog.New(NewHandler(rawHandler{b: &b}))
	log = log.With("host", "db\x1b[1m1").WithGroup("g\x07")
	log.Warn("server says \x1b]52;c;eA==\x07\r", "err", errors.New("psql: \x9b2J"), "n", 3, slog.Group("sub", "file", "a\rb"))
	want := `host=db\x1b[1m1 g\x07: server says \x1b]52;c;eA==\x07\x0d err=psql: \x9b2J n=3 sub=[file=a\x0db]` + "\n"
	if got := b.String(); got != want {
		t.Errorf("logged %q\nwant   %q", got, want)
	}
}
