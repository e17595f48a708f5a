package deploy

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// The flags the recipes may pass, literally: when the CLI's flags change,
// change these tables (and the recipes) with them.
var (
	// globalFlags go before the command (cli/env.go globalFlags).
	globalFlags = []string{"data-dir", "addr", "warehouse", "s3-endpoint", "profile", "output", "verbose"}
	// serveFlags are `lakehouse serve`'s (cli/serve.go, cli/serve_fleet.go),
	// with the fleet's --role=control|worker and the worker's flags.
	serveFlags = []string{
		"role", "flight-addr", "http-addr", "tls-cert", "tls-key", "shutdown-timeout",
		"max-upload-bytes", "upload-ttl", "max-project-bytes", "max-project-unpacked",
		"join", "name", "key", "heartbeat", "advertise-addr", "worker-timeout",
	}
	// roles are the values of --role a fleet recipe uses.
	roles = []string{"control", "worker"}
)

// reporter is the part of *testing.T the checks use.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

// fakeT collects the errors of a check that is meant to fail.
type fakeT struct{ errors []string }

func (f *fakeT) Helper() {}
func (f *fakeT) Errorf(format string, args ...any) {
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

// serveArgs is a parsed `lakehouse [global flags] serve [flags]`.
type serveArgs struct {
	global, serve map[string]string
}

// checkServeArgs checks the arguments after the binary's name: global
// flags, then serve, then serve's flags, each as --name=value (or a bare
// --name for a boolean). It reports what is wrong under where.
func checkServeArgs(t reporter, where string, args []string) serveArgs {
	t.Helper()
	a := serveArgs{global: map[string]string{}, serve: map[string]string{}}
	i := slices.Index(args, "serve")
	if i < 0 {
		t.Errorf("%s: no serve command in %q", where, args)
		return a
	}
	parse := func(flags []string, known []string, into map[string]string, what string) {
		for _, f := range flags {
			name, value, _ := strings.Cut(strings.TrimPrefix(f, "--"), "=")
			switch {
			case !strings.HasPrefix(f, "--"):
				t.Errorf("%s: %q is not a --flag=value (write flags as --name=value)", where, f)
			case !slices.Contains(known, name):
				t.Errorf("%s: --%s is not a %s flag (known: %s)", where, name, what, strings.Join(known, ", "))
			case into[name] != "":
				t.Errorf("%s: --%s given twice", where, name)
			default:
				into[name] = value
			}
		}
	}
	parse(args[:i], globalFlags, a.global, "global")
	parse(args[i+1:], serveFlags, a.serve, "`lakehouse serve`")
	if a.global["data-dir"] == "" {
		t.Errorf("%s: no --data-dir", where)
	}
	switch role := a.serve["role"]; role {
	case "worker":
		if a.serve["join"] == "" || a.serve["name"] == "" {
			t.Errorf("%s: a worker needs --join and --name", where)
		}
	case "control":
		if a.serve["join"] != "" || a.serve["name"] != "" {
			t.Errorf("%s: --join and --name are a worker's", where)
		}
	default:
		t.Errorf("%s: --role=%q, want one of %v", where, role, roles)
	}
	return a
}

func TestCheckServeArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args string
		ok   bool
	}{
		{"control", "--data-dir=/d serve --role=control --flight-addr=0.0.0.0:8815", true},
		{"worker", "--data-dir=/d serve --role=worker --join=c:8815 --name=w1", true},
		{"worker without join", "--data-dir=/d serve --role=worker --name=w1", false},
		{"unknown serve flag", "--data-dir=/d serve --role=control --listen=:1", false},
		{"serve flag before serve", "--data-dir=/d --role=control serve", false},
		{"bad role", "--data-dir=/d serve --role=all", false},
		{"value apart", "--data-dir=/d serve --role control", false},
		{"no serve", "--data-dir=/d auth init", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ft := &fakeT{}
			checkServeArgs(ft, tc.name, strings.Fields(tc.args))
			if ok := len(ft.errors) == 0; ok != tc.ok {
				t.Fatalf("%q: ok=%v (%v), want %v", tc.args, ok, ft.errors, tc.ok)
			}
		})
	}
}
