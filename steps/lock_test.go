package steps

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runLockScript runs the lock script with its directory moved into dir, as
// the primary's shell would, and returns its output and exit code.
func runLockScript(t *testing.T, dir string) (string, int) {
	t.Helper()
	for _, tool := range []string{"sh", "flock", "stat"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	script := strings.Replace(lockScript, "d=/run/pgfleet", "d="+dir, 1)
	cmd := exec.Command("sh", "-c", script, "pgfleet-lock", "main", "tester")
	cmd.Stdin = strings.NewReader("") // release at once
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

func TestLockScriptRefusesUnsafeDirectories(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the lock script insists on a root-owned directory: run as root")
	}
	base := t.TempDir()

	dir := filepath.Join(base, "pgfleet")
	out, code := runLockScript(t, dir)
	if code != 0 || !strings.Contains(out, "locked") {
		t.Fatalf("a fresh lock: exit %d, output %q", code, out)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("lock directory mode = %v (%v), want 0700", fi.Mode().Perm(), err)
	}

	// A directory made loose by someone is tightened again.
	os.Chmod(dir, 0o777)
	if out, code := runLockScript(t, dir); code != 0 {
		t.Errorf("a loose root-owned directory: exit %d, output %q", code, out)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("lock directory mode = %v after the run, want 0700", fi.Mode().Perm())
	}

	// A lock file that is a symlink would make root truncate its target.
	victim := filepath.Join(base, "victim")
	os.WriteFile(victim, []byte("precious"), 0o644)
	os.Remove(filepath.Join(dir, "main.lock"))
	if err := os.Symlink(victim, filepath.Join(dir, "main.lock")); err != nil {
		t.Fatal(err)
	}
	if out, code := runLockScript(t, dir); code != 76 || !strings.Contains(out, "symbolic link") {
		t.Errorf("a symlinked lock file: exit %d, output %q", code, out)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious" {
		t.Errorf("the symlink's target was changed: %q", b)
	}

	// The directory itself a symlink.
	link := filepath.Join(base, "link")
	os.Symlink(base, link)
	if out, code := runLockScript(t, link); code != 76 || !strings.Contains(out, "symbolic link") {
		t.Errorf("a symlinked lock directory: exit %d, output %q", code, out)
	}

	// A directory another user owns.
	other := filepath.Join(base, "other")
	os.Mkdir(other, 0o700)
	if err := os.Chown(other, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if out, code := runLockScript(t, other); code != 76 || !strings.Contains(out, "not a directory owned by root") {
		t.Errorf("a directory owned by another user: exit %d, output %q", code, out)
	}
}
