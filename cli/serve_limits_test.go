package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeLimitFlags: serve's limit flags refuse bad values before the
// server opens anything, and the values given reach the server: an import
// or a project beyond them is refused with the limit in the message.
func TestServeLimitFlags(t *testing.T) {
	d := newAuthDir(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"upload bytes zero", []string{"--max-upload-bytes", "0"}},
		{"upload bytes negative", []string{"--max-upload-bytes", "-1GiB"}},
		{"upload bytes not a size", []string{"--max-upload-bytes", "lots"}},
		{"upload bytes unit", []string{"--max-upload-bytes", "16XB"}},
		{"upload bytes below 1MiB", []string{"--max-upload-bytes", "512KiB"}},
		{"upload ttl zero", []string{"--upload-ttl", "0s"}},
		{"upload ttl negative", []string{"--upload-ttl", "-1h"}},
		{"upload ttl below 1s", []string{"--upload-ttl", "10ms"}},
		{"upload ttl not a duration", []string{"--upload-ttl", "soon"}},
		{"project bytes over the ceiling", []string{"--max-project-bytes", "1GiB"}},
		{"project bytes not a size", []string{"--max-project-bytes", "big"}},
		{"project unpacked over the ceiling", []string{"--max-project-unpacked", "8GiB"}},
		{"project unpacked zero", []string{"--max-project-unpacked", "0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve", "--flight-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}, tc.args...)
			out, errOut, code := d.lh(nil, args...)
			flag := strings.TrimPrefix(tc.args[0], "--")
			if code != 2 || !strings.Contains(errOut, flag) || strings.Contains(out, "flight on") {
				t.Errorf("serve %s: exit %d, want 2 naming %s\n%s%s", strings.Join(tc.args, " "), code, flag, out, errOut)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(d.dataDir, "catalog.db")); err == nil {
		t.Errorf("a refused serve created the catalog")
	}

	addr := d.serve("--max-upload-bytes", "1MiB", "--max-project-unpacked", "1MiB", "--upload-ttl", "2s")
	if out, errOut, code := d.remote(addr, "", "branch", "create", "tester.dev"); code != 0 {
		t.Fatalf("branch create: exit %d\n%s%s", code, out, errOut)
	}
	big := filepath.Join(t.TempDir(), "big.csv")
	rows := strings.Repeat("1,"+strings.Repeat("x", 100)+"\n", 20000) // 2 MiB
	if err := os.WriteFile(big, []byte("id,name\n"+rows), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := d.remote(addr, "", "table", "import", "big", "--from", big, "-b", "tester.dev")
	if code != 4 || !strings.Contains(errOut, "at most 1.0 MiB") || !strings.Contains(errOut, "--max-upload-bytes") {
		t.Errorf("an import over --max-upload-bytes: exit %d, want 4 naming the limit\n%s", code, errOut)
	}

	project := filepath.Join(t.TempDir(), "p")
	d.must(nil, "init", project)
	if err := os.WriteFile(filepath.Join(project, "notes.txt"), make([]byte, 3<<19), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = d.remote(addr, "", "run", "-p", project, "-r", "tester.dev")
	if code != 2 || !strings.Contains(errOut, "more than 1.0 MiB of files once unpacked") || !strings.Contains(errOut, "--max-project-unpacked") {
		t.Errorf("a run over --max-project-unpacked: exit %d, want 2 naming the limit\n%s", code, errOut)
	}
}
