package process

import (
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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

// TestInitLandlockOnly runs the init as a machine with Landlock but
// neither root nor user namespaces does: no namespaces, the launcher's
// own user; run as root and as an unprivileged user (uid 65534, the
// init started with that user as a launcher that is not root starts it).
// The files are open to anyone, so only Landlock stands in the way:
// reading a file outside the granted folders fails, and so does writing
// to a granted read-only folder (a package folder); the write folder
// works.
func TestInitLandlockOnly(t *testing.T) {
	abi := Probe().Landlock
	if abi == 0 {
		t.Skip("the kernel has no Landlock")
	}
	for _, tc := range []struct {
		name string
		uid  int
	}{{"launcher's user", os.Geteuid()}, {"unprivileged user", DefaultUID}} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.uid != os.Geteuid() && os.Geteuid() != 0 {
				t.Skip("only root starts the init as another user")
			}
			// Folders anyone may enter and write: t.TempDir's are closed.
			base, err := os.MkdirTemp("", "lakehouse-landlock-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(base) })
			os.Chmod(base, 0o755)
			secret, pkg, write := filepath.Join(base, "secret"), filepath.Join(base, "pkg"), filepath.Join(base, "write")
			for _, d := range []string{secret, pkg, write} {
				os.Mkdir(d, 0o777)
				os.Chmod(d, 0o777)
			}
			os.WriteFile(filepath.Join(secret, "shadow"), []byte("s"), 0o644)
			pkgFile := filepath.Join(pkg, "__init__.py")
			os.WriteFile(pkgFile, []byte("VALUE = 1\n"), 0o666)
			os.Chmod(pkgFile, 0o666)
			// The init must be a program the user may run: this test
			// binary's folder is closed to others.
			prog := filepath.Join(base, "init")
			self, err := os.Executable()
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Link(self, prog); err != nil {
				b, err := os.ReadFile(self)
				if err != nil {
					t.Fatal(err)
				}
				os.WriteFile(prog, b, 0o755)
			}
			script := `echo uid $(id -u)
cat ` + secret + `/shadow && echo read-secret
cat ` + pkgFile + ` >/dev/null && echo read-package
echo x >> ` + pkgFile + ` && echo wrote-package
touch ` + pkg + `/new.py && echo created-in-package
echo x > ` + write + `/w && echo wrote`
			sb := &sandbox{Init: prog, Args: []string{"/bin/sh", "-c", script},
				Env: []string{"PATH=/usr/bin:/bin"}, Dir: "/", UID: -1, GID: -1, Landlock: abi,
				ReadDirs: []string{"/usr", "/lib", "/lib64", "/bin", pkg}, ReadFiles: []string{"/dev/null", "/etc/ld.so.cache"},
				WriteDirs: []string{write}}
			sb.ReadDirs, _ = existing(sb.ReadDirs, true)
			sb.ReadFiles, _ = existing(sb.ReadFiles, false)
			m, err := modeFor(IsolationAuto, Support{Landlock: abi})
			if err != nil || m.namespaces || m.dropUser || m.userns {
				t.Fatalf("mode %+v %v: not Landlock alone", m, err)
			}
			cmd, status, life, err := sb.command(false)
			if err != nil {
				t.Fatal(err)
			}
			defer status.Close()
			if tc.uid != os.Geteuid() {
				cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(tc.uid), Gid: uint32(tc.uid)}
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
			got := out.String()
			t.Logf("status %q, output:\n%s", st, got)
			if !strings.HasPrefix(string(st), "exit ") {
				t.Fatalf("status %q", st)
			}
			if !strings.Contains(got, "uid "+strconv.Itoa(tc.uid)+"\n") {
				t.Errorf("the shell does not run as uid %d", tc.uid)
			}
			for _, bad := range []string{"read-secret", "wrote-package", "created-in-package"} {
				if strings.Contains(got, bad) {
					t.Errorf("Landlock let the shell do %s", bad)
				}
			}
			for _, good := range []string{"read-package", "wrote"} {
				if !strings.Contains(got, good+"\n") {
					t.Errorf("the shell could not do %s", good)
				}
			}
			if b, _ := os.ReadFile(pkgFile); string(b) != "VALUE = 1\n" {
				t.Errorf("package file now %q", b)
			}
		})
	}
}
