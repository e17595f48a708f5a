package deploy

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// unit is a parsed systemd unit file: section -> key -> values in order.
type unit map[string]map[string][]string

// parseUnit reads a unit file the way systemd does for what the recipes
// use: [Section] headers, Key=Value lines, # and ; comments, no line
// continuations.
func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unit{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasSuffix(line, "\\"):
			t.Errorf("%s:%d: line continuations are not used in these units", path, n)
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			if u[section] != nil {
				t.Errorf("%s:%d: section %s twice", path, n, section)
			}
			u[section] = map[string][]string{}
		default:
			key, value, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Errorf("%s:%d: %q is not Key=Value in a section", path, n, line)
				continue
			}
			u[section][key] = append(u[section][key], value)
		}
	}
	return u
}

// unitKeys are the directives these units may use, by section; the parser
// check refuses others (systemd-analyze verify, where it runs, knows them
// all).
var unitKeys = map[string][]string{
	"Unit":    {"Description", "Documentation", "Wants", "After", "Requires", "Before"},
	"Install": {"WantedBy"},
	"Service": {
		"Type", "User", "Group", "EnvironmentFile", "Environment", "LoadCredential", "StateDirectory",
		"StateDirectoryMode", "CacheDirectory", "ExecStart", "KillMode", "KillSignal", "TimeoutStopSec",
		"Restart", "RestartSec", "LimitNOFILE", "NoNewPrivileges", "ProtectSystem", "ProtectHome",
		"PrivateTmp", "PrivateDevices", "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
		"ProtectControlGroups", "ProtectClock", "ProtectHostname", "RestrictNamespaces", "RestrictRealtime",
		"RestrictSUIDSGID", "LockPersonality", "MemoryDenyWriteExecute", "RestrictAddressFamilies",
		"CapabilityBoundingSet", "AmbientCapabilities", "SystemCallArchitectures", "SystemCallFilter", "UMask",
	},
}

// singleKeys may appear once per unit.
var singleKeys = []string{"ExecStart", "Type", "User", "Group", "EnvironmentFile", "Restart", "StateDirectory"}

// envRef is a ${VAR} reference in an ExecStart line.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

func TestSystemdUnits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ file, role, envFile string }{
		{"lakehouse-control.service", "control", "control.env.example"},
		{"lakehouse-worker.service", "worker", "worker.env.example"},
	} {
		t.Run(tc.role, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join("systemd", tc.file)
			u := parseUnit(t, path)
			for section, keys := range u {
				known, ok := unitKeys[section]
				if !ok {
					t.Errorf("%s: unexpected section [%s]", path, section)
				}
				for key, values := range keys {
					if !slices.Contains(known, key) {
						t.Errorf("%s: [%s] %s is not a directive these units use", path, section, key)
					}
					if len(values) > 1 && slices.Contains(singleKeys, key) {
						t.Errorf("%s: %s given %d times", path, key, len(values))
					}
				}
			}
			svc := u["Service"]
			if len(svc["ExecStart"]) != 1 {
				t.Fatalf("%s: want one ExecStart", path)
			}
			args := strings.Fields(svc["ExecStart"][0])
			if args[0] != "/usr/local/bin/lakehouse" {
				t.Errorf("%s: ExecStart runs %s, want /usr/local/bin/lakehouse", path, args[0])
			}
			a := checkServeArgs(t, path, args[1:])
			if a.serve["role"] != tc.role {
				t.Errorf("%s: --role=%s, want %s", path, a.serve["role"], tc.role)
			}
			if svc["User"] == nil || svc["User"][0] == "root" || svc["NoNewPrivileges"] == nil {
				t.Errorf("%s: run as a system user with NoNewPrivileges=yes", path)
			}
			env := readEnvFile(t, filepath.Join("systemd", tc.envFile))
			for _, ref := range envRef.FindAllStringSubmatch(svc["ExecStart"][0], -1) {
				if _, ok := env[ref[1]]; !ok {
					t.Errorf("%s: ExecStart uses %s, which %s does not set", path, ref[0], tc.envFile)
				}
			}
		})
	}
}

func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("%s: %q is not KEY=value", path, line)
		}
		env[k] = v
	}
	return env
}

// TestSystemdAnalyzeVerify runs `systemd-analyze verify` on the units, with
// ExecStart pointed at an executable stand-in for the binary (verify
// checks that it exists). Where systemd is not installed, TestSystemdUnits
// is the check.
func TestSystemdAnalyzeVerify(t *testing.T) {
	t.Parallel()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze is not installed: TestSystemdUnits's parser is the check")
		return
	}
	dir := t.TempDir()
	stub := filepath.Join(dir, "lakehouse")
	if err := os.WriteFile(stub, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	units, err := filepath.Glob(filepath.Join("systemd", "*.service"))
	if err != nil || len(units) != 2 {
		t.Fatalf("units: %v %v", units, err)
	}
	var paths []string
	for _, u := range units {
		data, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.Base(u))
		if err := os.WriteFile(p, bytes.ReplaceAll(data, []byte("/usr/local/bin/lakehouse"), []byte(stub)), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	cmd := exec.Command(analyze, append([]string{"verify"}, paths...)...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, stderr.String())
	}
}

// TestContainerfile checks the image recipe builds the binary with the
// build tag, from the Go release of go.mod, and starts lakehouse serve
// with known flags.
func TestContainerfile(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("container", "Containerfile"))
	if err != nil {
		t.Fatal(err)
	}
	cf := string(data)
	if !regexp.MustCompile(`go build -tags[ =]duckdb_arrow`).MatchString(cf) {
		t.Error("Containerfile: the go build must have -tags duckdb_arrow")
	}
	mod, err := os.ReadFile(filepath.Join("..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(mod)
	if goLine == nil || !strings.Contains(cf, "ARG GO_VERSION="+string(goLine[1])+"\n") {
		t.Errorf("Containerfile: ARG GO_VERSION must be go.mod's Go release %s", goLine[1])
	}
	if n := strings.Count(cf, "\nFROM "); n != 2 {
		t.Errorf("Containerfile: want a build stage and a runtime stage, have %d FROM", n)
	}
	if !strings.Contains(cf, "\nUSER 65532") {
		t.Error("Containerfile: the image must run as a non-root user")
	}
	cmd := regexp.MustCompile(`(?m)^CMD \[(.*)\]$`).FindStringSubmatch(cf)
	if cmd == nil {
		t.Fatal("Containerfile: no CMD [...]")
	}
	var args []string
	for _, a := range strings.Split(cmd[1], ",") {
		args = append(args, strings.Trim(strings.TrimSpace(a), `"`))
	}
	// LAKEHOUSE_DATA_DIR of the image stands for --data-dir.
	checkServeArgs(t, "Containerfile CMD", append([]string{"--data-dir=/var/lib/lakehouse"}, args...))
}
