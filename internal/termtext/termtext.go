// Package termtext makes text from hosts safe to show on a terminal.
//
// A host's stderr, psql's messages, a server's warnings and file names
// reach pgfleet's errors, hints, tables and logs as they came. A hostile
// host could put terminal control sequences in them (ESC [ ..., an OSC 52
// clipboard write, a carriage return that overwrites the line, the bell)
// and drive the operator's terminal. pgfleet's errors and hints, its text
// tables and reports and its text log go through Escape, once, where they
// are written.
//
// It imports no other pgfleet package.
package termtext

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"unicode/utf8"
)

const hex = "0123456789abcdef"

// Escape returns s with every control character written as an escape:
// C0 controls but newline and tab, and DEL, as \xNN; C1 controls
// (U+0080 to U+009F) as \u00NN; each byte of invalid UTF-8 as \xNN.
// Newlines and tabs stay, for multi-line hints, diffs and tables.
//
// A backslash is left as it is, so that Escape(Escape(s)) == Escape(s)
// and a writer may escape what another has escaped already.
func Escape(s string) string {
	i := unsafeAt(s)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1, r < 0x20 && r != '\n' && r != '\t', r == 0x7f:
			b.WriteString(`\x`)
			b.WriteByte(hex[s[i]>>4])
			b.WriteByte(hex[s[i]&0xf])
		case r >= 0x80 && r <= 0x9f:
			b.WriteString(`\u00`)
			b.WriteByte(hex[r>>4])
			b.WriteByte(hex[r&0xf])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// unsafeAt is the index of the first byte Escape changes, or -1.
func unsafeAt(s string) int {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f {
				return i
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size <= 1) || (r >= 0x80 && r <= 0x9f) {
			return i
		}
		i += size
	}
	return -1
}

// Writer escapes what is written to it (see Escape) before passing it on.
// Each Write is escaped by itself: a character split across two writes
// would be escaped as invalid UTF-8, so write whole strings (as fmt's
// functions do) and never bytes a few at a time.
type Writer struct{ w io.Writer }

// NewWriter returns a Writer to w; w itself when it escapes already.
func NewWriter(w io.Writer) *Writer {
	if e, ok := w.(*Writer); ok {
		return e
	}
	return &Writer{w: w}
}

// Write writes p, escaped, and reports len(p) when all of it was written.
func (e *Writer) Write(p []byte) (int, error) {
	s := string(p)
	if unsafeAt(s) < 0 {
		return e.w.Write(p)
	}
	if _, err := io.WriteString(e.w, Escape(s)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// NewHandler returns a slog.Handler that escapes each record's message
// and the text of its attributes (strings, errors and other values, in
// groups too) before h formats them. It is for handlers that write text;
// a JSON handler's encoding escapes already.
func NewHandler(h slog.Handler) slog.Handler {
	return handler{h}
}

type handler struct{ h slog.Handler }

func (h handler) Enabled(ctx context.Context, l slog.Level) bool { return h.h.Enabled(ctx, l) }

func (h handler) Handle(ctx context.Context, r slog.Record) error {
	esc := slog.NewRecord(r.Time, r.Level, Escape(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		esc.AddAttrs(escapeAttr(a))
		return true
	})
	return h.h.Handle(ctx, esc)
}

func (h handler) WithAttrs(as []slog.Attr) slog.Handler {
	esc := make([]slog.Attr, len(as))
	for i, a := range as {
		esc[i] = escapeAttr(a)
	}
	return handler{h.h.WithAttrs(esc)}
}

func (h handler) WithGroup(name string) slog.Handler { return handler{h.h.WithGroup(Escape(name))} }

// escapeAttr escapes a's key and, as text, its value; numbers, times and
// the like are left as they are.
func escapeAttr(a slog.Attr) slog.Attr {
	a.Key = Escape(a.Key)
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		a.Value = slog.StringValue(Escape(v.String()))
	case slog.KindAny:
		a.Value = slog.StringValue(Escape(fmt.Sprintf("%+v", v.Any())))
	case slog.KindGroup:
		g := v.Group()
		esc := make([]slog.Attr, len(g))
		for i, ga := range g {
			esc[i] = escapeAttr(ga)
		}
		a.Value = slog.GroupValue(esc...)
	default:
		a.Value = v
	}
	return a
}
