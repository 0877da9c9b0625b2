package lab

import (
	"bytes"
	"log/slog"
	"regexp"
	"testing"
	"time"
)

func TestBeginLogsStartAndEnd(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	}))
	done := begin(l, "building host image", "host image built", "image", "x", "estimate", "under a minute")
	if got, want := buf.String(), `level=INFO msg="building host image" image=x estimate="under a minute"`+"\n"; got != want {
		t.Fatalf("before done: %q, want %q", got, want)
	}
	time.Sleep(150 * time.Millisecond)
	done()
	re := regexp.MustCompile(`\nlevel=INFO msg="host image built" image=x estimate="under a minute" took=([1-9][0-9]*ms|[0-9.]+s)\n$`)
	if !re.MatchString(buf.String()) {
		t.Errorf("after done: %q, want it to end with %v", buf.String(), re)
	}
}

func TestNilLoggerLogsNothing(t *testing.T) {
	begin(orDiscard(nil), "a", "b")() // must not panic
}

func TestRoundDuration(t *testing.T) {
	for _, tc := range []struct {
		in   time.Duration
		want string
	}{
		{440 * time.Millisecond, "400ms"},
		{1460 * time.Millisecond, "1.5s"},
		{41*time.Second + 300*time.Millisecond, "41s"},
		{62*time.Second + 600*time.Millisecond, "1m3s"},
	} {
		if got := roundDuration(tc.in).String(); got != tc.want {
			t.Errorf("roundDuration(%v) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
