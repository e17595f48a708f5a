package launchertest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/envcache"
	"github.com/lakehouse-dev/lakehouse/internal/repodir"
	"github.com/lakehouse-dev/lakehouse/runtime/function"
)

// HostileFile is testdata/hostile.py: a model that attacks what it must
// not reach.
func HostileFile(t testing.TB) string {
	return repodir.Path("runtime/launchertest/testdata/hostile.py")
}

// attacks are the lines hostile.attack prints, each of which must say
// "blocked".
var attacks = []string{
	"read_shadow", "read_catalog", "truncate_catalog", "write_warehouse", "read_warehouse",
	"append_package", "chmod_package", "write_code", "list_home", "write_var_tmp",
	"see_processes", "signal_launcher", "unshare", "connect_loopback",
}

// runHostile attacks the launcher's isolation with real functions: each
// attack must fail, the files it aims at (a catalog and a warehouse file
// of the test's, a package of the environment, the model's own code) must
// stay byte for byte the same, and nothing the function starts may
// outlive it.
func runHostile(t *testing.T, l function.Launcher, env *envcache.Environment) {
	// The code folder is the model's own, as runs/<id>/code is.
	codeDir := t.TempDir()
	code := filepath.Join(codeDir, "hostile.py")
	copyFile(t, HostileFile(t), code, 0o644)
	// A catalog and a committed warehouse file, outside every folder the
	// function is given, in a folder anyone may enter and writable by
	// anyone: only the sandbox stands between them and the function.
	home, err := os.MkdirTemp("", "lakehouse-hostile-home-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	catalog := filepath.Join(home, "catalog.db")
	warehouse := filepath.Join(home, "warehouse", "main", "t", "data-0.parquet")
	os.MkdirAll(filepath.Dir(warehouse), 0o755)
	os.WriteFile(catalog, []byte("bbolt catalog bytes"), 0o666)
	os.WriteFile(warehouse, []byte("PAR1 committed data PAR1"), 0o666)
	for _, p := range []string{home, catalog, warehouse} {
		os.Chmod(p, map[bool]os.FileMode{true: 0o755, false: 0o666}[p == home])
	}
	pkgDir, pkgFile := packageFile(t, env, "pyarrow")

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
	port := ln.Addr().(*net.TCPAddr).Port

	watched := []string{catalog, warehouse, pkgFile, code}
	before := hashes(t, watched...)
	pkgMode := modes(t, pkgDir, pkgFile)
	defer func() {
		// A successful attack on the shared package cache must not spoil
		// later runs: put the modes back (the content check fails the test).
		// Only a changed mode is put back: a chmod changes the file's ctime
		// even to the same mode, and the cache's stamp covers ctimes.
		for p, m := range pkgMode {
			if st, err := os.Stat(p); err == nil && st.Mode() != m {
				os.Chmod(p, m)
			}
		}
	}()

	lg := &logs{}
	call := func(t *testing.T, internet bool) (*function.Result, error) {
		dir := DataDir(t)
		lg = &logs{}
		return l.Launch(context.Background(), function.Invocation{
			Model: "hostile", Env: env, ModulePath: code, Function: "attack", DataDir: dir,
			Output: filepath.Join(dir, "out.arrow"), Timeout: time.Minute, Log: lg.sink, InternetAccess: internet,
			Params: map[string]any{"shadow": "/etc/shadow", "catalog": catalog, "warehouse": warehouse,
				"package_dir": pkgDir, "package_file": pkgFile, "code_file": code, "home": home,
				"pid": os.Getpid(), "port": port},
		})
	}
	results := func(t *testing.T) map[string]string {
		got := map[string]string{}
		for _, line := range lg.text("stdout") {
			if rest, ok := strings.CutPrefix(line, "ATTACK "); ok {
				name, verdict, _ := strings.Cut(rest, " ")
				got[name] = verdict
			}
		}
		return got
	}

	t.Run("every attack fails", func(t *testing.T) {
		res, err := call(t, false)
		if err != nil {
			t.Fatalf("%v\nstderr: %s", err, strings.Join(lg.text("stderr"), "\n"))
		}
		if got := ReadColumn(t, res.Output, "x"); len(got) != 3 {
			t.Fatalf("output %v", got)
		}
		got := results(t)
		for _, a := range attacks {
			v, ok := got[a]
			switch {
			case !ok:
				t.Errorf("attack %s: no result line", a)
			case !strings.HasPrefix(v, "blocked"):
				t.Errorf("attack %s %s", a, v)
			default:
				t.Logf("%s: %s", a, v)
			}
		}
		if after := hashes(t, watched...); !equal(before, after) {
			t.Errorf("files changed:\nbefore %v\nafter  %v", before, after)
		}
		for p, m := range modes(t, pkgDir, pkgFile) {
			if m != pkgMode[p] {
				t.Errorf("mode of %s changed from %v to %v", p, pkgMode[p], m)
			}
		}
	})
	t.Run("internet access reaches the network", func(t *testing.T) {
		if _, err := call(t, true); err != nil {
			t.Fatal(err)
		}
		if v := results(t)["connect_loopback"]; v != "SUCCEEDED" {
			t.Fatalf("with internet access, connect to 127.0.0.1:%d: %s", port, v)
		}
		if after := hashes(t, watched...); !equal(before, after) {
			t.Errorf("files changed:\nbefore %v\nafter  %v", before, after)
		}
	})
	t.Run("a failed attack is reported as the function's error", func(t *testing.T) {
		dir := DataDir(t)
		_, err := l.Launch(context.Background(), function.Invocation{Model: "hostile", Env: env, ModulePath: code,
			Function: "read_shadow", DataDir: dir, Timeout: time.Minute})
		var fe *function.FunctionError
		if !errors.As(err, &fe) || fe.Kind != function.FailureException {
			t.Fatalf("err %v (%T), want an exception", err, err)
		}
		if fe.Type != "PermissionError" && fe.Type != "FileNotFoundError" || !strings.Contains(fe.Message, "/etc/shadow") {
			t.Fatalf("%+v", fe)
		}
		t.Log(err)
	})
	t.Run("runs as an unprivileged user", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("only root can give functions a user of their own")
		}
		dir := DataDir(t)
		lg := &logs{}
		_, err := l.Launch(context.Background(), function.Invocation{Model: "whoami", Env: env, ModulePath: code,
			Function: "whoami", DataDir: dir, Timeout: time.Minute, Log: lg.sink})
		if err != nil {
			t.Fatal(err)
		}
		got := lg.text("stdout")
		if len(got) != 1 || strings.HasPrefix(got[0], "0 ") || strings.HasSuffix(got[0], " 0") {
			t.Fatalf("uid and gid %q: a function must not run as root", got)
		}
		st, err := os.Stat(pkgFile)
		if err != nil {
			t.Fatal(err)
		}
		if owner := st.Sys().(*syscall.Stat_t).Uid; strings.HasPrefix(got[0], strconv.Itoa(int(owner))+" ") {
			t.Fatalf("the function runs as uid %d, the owner of the package folders", owner)
		}
	})
	t.Run("no process outlives the run", func(t *testing.T) {
		marker := fmt.Sprintf("lakehouse-daemon-%d-%d", os.Getpid(), time.Now().UnixNano())
		dir := DataDir(t)
		lg := &logs{}
		_, err := l.Launch(context.Background(), function.Invocation{Model: "daemon", Env: env, ModulePath: code,
			Function: "daemon", DataDir: dir, Timeout: time.Minute, Log: lg.sink, Params: map[string]any{"marker": marker}})
		if err != nil {
			t.Fatal(err)
		}
		if got := lg.text("stdout"); len(got) != 1 || got[0] != "daemon running: True" {
			t.Fatalf("stdout %q", got)
		}
		// The marker is in the environment of every process of the run
		// (the invocation's parameters).
		if left := processesWith(marker); len(left) > 0 {
			for _, pid := range left {
				killProcess(pid)
			}
			t.Fatalf("processes %v of the function outlived it", left)
		}
	})
}

// packageFile is the folder of package name in env and its __init__.py.
func packageFile(t testing.TB, env *envcache.Environment, name string) (string, string) {
	for _, d := range env.Paths() {
		f := filepath.Join(d, name, "__init__.py")
		if _, err := os.Stat(f); err == nil {
			return filepath.Join(d, name), f
		}
	}
	t.Fatalf("no package %s in %v", name, env.Paths())
	return "", ""
}

func copyFile(t testing.TB, from, to string, mode os.FileMode) {
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}

func hashes(t testing.TB, paths ...string) []string {
	var out []string
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		io.Copy(h, f)
		f.Close()
		out = append(out, filepath.Base(p)+"="+hex.EncodeToString(h.Sum(nil))[:12])
	}
	return out
}

func modes(t testing.TB, paths ...string) map[string]fs.FileMode {
	out := map[string]fs.FileMode{}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		out[p] = st.Mode()
	}
	return out
}

func equal(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

// processesWith lists the processes whose environment holds s.
func processesWith(s string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err == nil && strings.Contains(string(b), s) {
			out = append(out, pid)
		}
	}
	return out
}

func killProcess(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		p.Kill()
	}
}
