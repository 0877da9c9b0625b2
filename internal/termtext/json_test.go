package termtext

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestJSON: what encoding/json leaves raw (DEL, the C1 controls) is
// written as \u escapes; the JSON decodes to the same values, and holds
// no control a terminal would act on.
func TestJSON(t *testing.T) {
	in := map[string]string{"csi": "a\u009b2Jb", "del": "x\x7fy", "osc": "\u009d52;c;Zm9v\u009c", "plain": "ok é ✓", "c0": "\x1b[2K\r"}
	raw, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out := JSON(raw)
	if !json.Valid(out) {
		t.Fatalf("not JSON: %s", out)
	}
	for _, bad := range []string{"\u009b", "\u009c", "\u009d", "\x7f", "\x1b", "\r"} {
		if bytes.Contains(out, []byte(bad)) {
			t.Errorf("%q is still raw in %s", bad, out)
		}
	}
	var back map[string]string
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	for k, v := range in {
		if back[k] != v {
			t.Errorf("%s decodes to %q, want %q", k, back[k], v)
		}
	}
	plain := []byte(`{"a":"é ✓"}`)
	if got := JSON(plain); &got[0] != &plain[0] {
		t.Error("JSON copied a document that needs no escape")
	}
	var buf bytes.Buffer
	if n, err := NewJSONWriter(&buf).Write(raw); err != nil || n != len(raw) || !bytes.Equal(buf.Bytes(), out) {
		t.Errorf("JSONWriter wrote %q (%d, %v), want %q", buf.Bytes(), n, err, out)
	}
}
