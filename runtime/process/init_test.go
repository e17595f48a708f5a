package process

import (
	"io"
	"os"
	"strings"
	"testing"
)

// TestInit starts /bin/sh through the function's init in the sandbox this
// machine offers the user running the test (as root: namespaces and
// another user; otherwise a user namespace, or Landlock alone) and checks
// what the shell sees. Run it as another user too, e.g.
// setpriv --reuid=65534 --regid=65534 --clear-groups ./process.test -test.run TestInit.
func TestInit(t *testing.T) {
	m, err := modeFor(IsolationAuto, Probe())
	if err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o777)
	secret := t.TempDir()
	os.WriteFile(secret+"/secret", []byte("s"), 0o644)
	sb := &sandbox{
		Args: []string{"/bin/sh", "-c", `echo pid $$ uid $(id -u); cat ` + secret + `/secret && echo read-secret; echo x > ` + dir + `/w && echo wrote`},
		Env:  []string{"PATH=/usr/bin:/bin"}, Dir: "/", UID: -1, GID: -1,
		Namespaces: m.namespaces, UserNS: m.userns, Landlock: m.landlock,
		ReadDirs: []string{"/usr", "/lib", "/lib64", "/bin", "/etc"}, ReadFiles: []string{"/dev/null"}, WriteDirs: []string{dir},
	}
	if m.dropUser {
		sb.UID, sb.GID = DefaultUID, DefaultUID
	}
	if m.namespaces {
		sb.ReadDirs = append(sb.ReadDirs, "/proc")
	}
	sb.ReadDirs, _ = existing(sb.ReadDirs, true)
	cmd, status, life, err := sb.command(false)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, f := range cmd.ExtraFiles {
		f.Close()
	}
	st, _ := io.ReadAll(status)
	cmd.Wait()
	life.Close()
	t.Logf("mode %+v: status %q, output:\n%s", m, st, out.String())
	if !strings.HasPrefix(string(st), "exit ") {
		t.Fatalf("status %q", st)
	}
	got := out.String()
	if m.namespaces && !strings.Contains(got, "pid 2 ") {
		t.Errorf("the shell is not the init's child in a PID namespace")
	}
	if m.landlock > 0 && strings.Contains(got, "read-secret") {
		t.Errorf("the sandbox read a file outside its folders")
	}
	if !strings.Contains(got, "wrote") {
		t.Errorf("the sandbox could not write its folder")
	}
}
