package update

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// TestReadOnlyDirectory makes the binary's directory really unwritable, the
// way the running user meets it: for a normal user with mode 0555, for root
// (who ignores permission bits, and the tests run as root in CI) with a
// read-only bind mount inside a private mount namespace, so nothing leaks
// into the host's mounts.
func TestReadOnlyDirectory(t *testing.T) {
	c := &cdn{version: "v1.3.0"}
	c.publish("v1.3.0", "km-linux-amd64", newBinary)
	srv := newCDN(t, c)
	dir := t.TempDir()
	exe := installOld(t, dir)
	want := "run 'sudo km update', or reinstall: curl -sSL https://get.kilometers.ai | sh"

	switch {
	case os.Geteuid() != 0:
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(dir, 0o755)
		want = "cannot write to " + dir + ": permission denied; km was not changed; " + want
	case os.Getenv("KM_TEST_READONLY_CHILD") == "":
		runInMountNamespace(t)
		return
	default:
		if err := syscall.Mount(dir, dir, "", syscall.MS_BIND, ""); err != nil {
			t.Skipf("bind mount: %v", err)
		}
		defer syscall.Unmount(dir, syscall.MNT_DETACH)
		if err := syscall.Mount("", dir, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
			t.Skipf("read-only remount: %v", err)
		}
		if f, err := os.CreateTemp(dir, "probe"); err == nil {
			f.Close()
			t.Fatal("root can still write to the read-only mount")
		}
		want = "cannot write to " + dir + ": read-only file system; km was not changed; reinstall into a writable directory: curl -sSL https://get.kilometers.ai | sh"
	}

	_, err := newUpdater(srv, exe, "v1.2.0").Update(context.Background(), "")
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant  %s", err, want)
	}
	assertContent(t, exe, oldBinary)
	assertOnly(t, dir, "km")
}

func runInMountNamespace(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestReadOnlyDirectory$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "KM_TEST_READONLY_CHILD=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	text := string(out)
	switch {
	case err != nil && strings.Contains(text, "--- FAIL"):
		t.Fatalf("in a mount namespace:\n%s", text)
	case err != nil:
		t.Skipf("cannot test as root without a private mount namespace (%v)", err)
	case strings.Contains(text, "--- SKIP"):
		t.Skipf("in a mount namespace:\n%s", text)
	case !strings.Contains(text, "--- PASS: TestReadOnlyDirectory"):
		t.Fatalf("unexpected child output:\n%s", text)
	}
	t.Logf("read-only bind mount case passed in a private mount namespace")
}
