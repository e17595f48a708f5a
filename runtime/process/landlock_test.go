package process_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/envcache"
	"github.com/lakehouse-dev/lakehouse/runtime/function"
	"github.com/lakehouse-dev/lakehouse/runtime/launchertest"
	"github.com/lakehouse-dev/lakehouse/runtime/process"
)

// TestLandlockOnly takes the path of a machine that offers Landlock but
// neither root nor unprivileged user namespaces: no namespaces, no other
// user; the Landlock ruleset and the seccomp filter are all that stand
// between a hostile function (runtime/launchertest/testdata/hostile.py)
// and the host. The test runs as root, so file modes stop nothing here
// (root may read /etc/shadow and write every file): whatever is blocked,
// the sandbox blocked.
//
// What Landlock alone cannot do, and the test accepts: hide other
// processes (no PID namespace) and refuse chmod (not a Landlock right; a
// function that is not root can chmod only what its user owns).
func TestLandlockOnly(t *testing.T) {
	abi := process.Probe().Landlock
	if abi == 0 {
		t.Skip("the kernel has no Landlock")
	}
	l := process.NewWithSupport(process.Config{ScratchDir: t.TempDir()}, process.Support{Landlock: abi})

	// A package folder of the environment, as the package cache makes
	// them (no write bits), but of the test's own: root can chmod it.
	site := t.TempDir()
	pkgDir := filepath.Join(site, "evilpkg")
	pkgFile := filepath.Join(pkgDir, "__init__.py")
	os.Mkdir(pkgDir, 0o755)
	os.WriteFile(pkgFile, []byte("VALUE = 1\n"), 0o444)
	os.Chmod(pkgDir, 0o555)
	os.Chmod(site, 0o555)
	t.Cleanup(func() { os.Chmod(site, 0o755); os.Chmod(pkgDir, 0o755) })
	env := *launchertest.Env(t)
	env.Packages = append(append([]*envcache.Package(nil), env.Packages...), &envcache.Package{Name: "evilpkg", Dir: site})

	codeDir := t.TempDir()
	code := filepath.Join(codeDir, "hostile.py")
	src, err := os.ReadFile(launchertest.HostileFile(t))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(code, src, 0o644)
	home := t.TempDir()
	catalog := filepath.Join(home, "catalog.db")
	warehouse := filepath.Join(home, "warehouse", "data-0.parquet")
	os.MkdirAll(filepath.Dir(warehouse), 0o755)
	os.WriteFile(catalog, []byte("bbolt catalog bytes"), 0o666)
	os.WriteFile(warehouse, []byte("PAR1 committed data PAR1"), 0o666)

	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()

	watched := []string{"/etc/shadow", catalog, warehouse, pkgFile, code}
	before := sums(t, watched)
	dir := launchertest.DataDir(t)
	var out, errOut []string
	res, err := l.Launch(context.Background(), function.Invocation{
		Model: "hostile", Env: &env, ModulePath: code, Function: "attack", DataDir: dir,
		Output: filepath.Join(dir, "out.arrow"), Timeout: time.Minute,
		Log: func(line function.LogLine) {
			if line.Stream == "stdout" {
				out = append(out, line.Text)
			} else {
				errOut = append(errOut, line.Text)
			}
		},
		Params: map[string]any{"shadow": "/etc/shadow", "catalog": catalog, "warehouse": warehouse,
			"package_dir": pkgDir, "package_file": pkgFile, "code_file": code, "home": home,
			"pid": os.Getpid(), "port": ln.Addr().(*net.TCPAddr).Port},
	})
	if err != nil {
		t.Fatalf("%v\nstderr: %s", err, strings.Join(errOut, "\n"))
	}
	if got := launchertest.ReadColumn(t, res.Output, "x"); len(got) != 3 {
		t.Fatalf("output %v", got)
	}
	got := map[string]string{}
	for _, line := range out {
		if rest, ok := strings.CutPrefix(line, "ATTACK "); ok {
			name, verdict, _ := strings.Cut(rest, " ")
			got[name] = verdict
		}
	}
	blocked := []string{"read_shadow", "read_catalog", "truncate_catalog", "write_warehouse", "read_warehouse",
		"append_package", "chmod_package", "write_code", "list_home", "write_var_tmp", "unshare"}
	if abi >= 4 {
		blocked = append(blocked, "connect_loopback") // TCP rights
	}
	if abi >= 6 {
		blocked = append(blocked, "signal_launcher") // scoped signals
	}
	for _, a := range blocked {
		switch v, ok := got[a]; {
		case !ok:
			t.Errorf("attack %s: no result line", a)
		case !strings.HasPrefix(v, "blocked"):
			t.Errorf("attack %s %s", a, v)
		default:
			t.Logf("%s: %s", a, v)
		}
	}
	t.Logf("see_processes (no PID namespace; /proc is not granted): %s", got["see_processes"])
	for _, p := range []string{pkgDir, pkgFile} {
		if st, err := os.Stat(p); err == nil {
			t.Logf("mode of %s after chmod_package: %v (chmod is not a Landlock right)", filepath.Base(p), st.Mode())
		}
	}
	if after := sums(t, watched); !slices.Equal(before, after) {
		t.Errorf("files changed:\nbefore %v\nafter  %v", before, after)
	}
	if left, _ := filepath.Glob("/var/tmp/lakehouse-hostile-*"); len(left) > 0 {
		os.Remove(left[0])
		t.Errorf("the function wrote %v", left)
	}
}

// sums are the SHA-256 of each file of paths, as "path=hex".
func sums(t *testing.T, paths []string) []string {
	var out []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256(b)
		out = append(out, p+"="+hex.EncodeToString(h[:]))
	}
	return out
}
