package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

func testApp() *Env {
	return &Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "" }}
}

func TestNormalizeArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"nothing", "", ""},
		{"flags after positional", "branch create alice.dev --from-ref main", "branch create --from-ref main alice.dev"},
		{"global after command", "branch ls -O json", "-O json branch ls"},
		{"global with equals", "log --output=json -n 3", "--output=json log -n 3"},
		{"command flag wins over global", "table ls -n sales -v", "-v table ls -n sales"},
		{"bool command flag takes no value", "checkout -b alice.dev --from-ref v1", "checkout -b --from-ref v1 alice.dev"},
		{"repeated slice flag and extra sources", "table import t --from a.csv b.csv --from c.csv", "table import --from a.csv --from c.csv t b.csv"},
		{"dash-dash keeps the rest positional", "log -- -n", "log -- -n"},
		{"unknown flag stays with the command", "branch ls --bogus", "branch ls --bogus"},
		{"unknown flag before the command", "--bogus branch ls", "--bogus branch ls"},
		{"help command", "help branch create", "branch create --help"},
		{"help alone", "help", "--help"},
		{"help of unknown command", "help frob", "frob"},
		{"version flag is the version command", "--version", "version"},
		{"version flag with globals", "-O json --version", "-O json version"},
		{"version flag after a command is the command's", "branch ls --version", "branch ls --version"},
		{"alias", "ns ls -r main", "ns ls -r main"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			app := newApp(testApp())
			got, err := normalizeArgs(app, append([]string{"lakehouse"}, strings.Fields(tt.in)...))
			if err != nil {
				t.Fatal(err)
			}
			if g := strings.Join(got[1:], " "); g != tt.want {
				t.Errorf("normalizeArgs(%q) = %q, want %q", tt.in, g, tt.want)
			}
		})
	}
}

// TestNormalizeArgsUnknownCommand: an unknown command is reported before
// flags that would belong to it, skipping global flags and their values.
func TestNormalizeArgsUnknownCommand(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{"chekout -b x", `unknown command "chekout" (did you mean "checkout"?); run ` + "`lakehouse --help`"},
		{"--data-dir chekout chekout -b x", `unknown command "chekout" (did you mean "checkout"?)`},
		{"-O json brnach ls --bogus", `unknown command "brnach" (did you mean "branch"?)`},
		{"frobnicate -x", `unknown command "frobnicate"; run`},
		{"branch frob ls", `unknown command "branch frob"; run ` + "`lakehouse branch --help`"},
		{"branch craete -b x", `unknown command "branch craete" (did you mean "create"?)`},
	} {
		app := newApp(testApp())
		_, err := normalizeArgs(app, append([]string{"lakehouse"}, strings.Fields(tt.in)...))
		if errdefs.ExitCode(err) != errdefs.ExitUsage || !strings.Contains(fmt.Sprint(err), tt.want) {
			t.Errorf("normalizeArgs(%q): err = %v, want a usage error with %q", tt.in, err, tt.want)
		}
	}
}

func TestNormalizeArgsMissingValue(t *testing.T) {
	t.Parallel()
	app := newApp(testApp())
	_, err := normalizeArgs(app, []string{"lakehouse", "branch", "create", "a.b", "--from-ref"})
	if errdefs.ExitCode(err) != errdefs.ExitUsage || !strings.Contains(err.Error(), "--from-ref needs a value") {
		t.Fatalf("err = %v, want a usage error about --from-ref", err)
	}
}

func TestSplitCommand(t *testing.T) {
	t.Parallel()
	got, err := splitCommand(`A=1 lakehouse x 'has space' "q $D" {a*3} $D/f`, map[string]string{"D": "/tmp"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"A=1", "lakehouse", "x", "has space", "q /tmp", "aaa", "/tmp/f"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// FuzzNormalizeArgs checks that reordering never loses, invents or
// duplicates a word (other than the "--" and "--help" it may add or the
// "help" it may remove) and never panics.
func FuzzNormalizeArgs(f *testing.F) {
	for _, s := range []string{
		"branch create alice.dev --from-ref main -O json",
		"table import sales.t --from a.csv b.csv --mode=replace -b x.y",
		"help table import",
		"log -- -n 3",
		"-v --data-dir /tmp checkout -b a.b",
		"checkout -b",
	} {
		f.Add(s)
	}
	app := newApp(testApp())
	f.Fuzz(func(t *testing.T, line string) {
		in := append([]string{"lakehouse"}, strings.Fields(line)...)
		out, err := normalizeArgs(app, in)
		if err != nil {
			if errdefs.ExitCode(err) != errdefs.ExitUsage {
				t.Fatalf("non-usage error %v", err)
			}
			return
		}
		if out[0] != "lakehouse" {
			t.Fatalf("program name moved: %q", out)
		}
		count := func(ws []string) map[string]int {
			m := map[string]int{}
			for _, w := range ws {
				if w != "--" && w != "--help" && w != "help" {
					m[w]++
				}
			}
			return m
		}
		a, b := count(in), count(out)
		for w, n := range a {
			if b[w] != n {
				t.Fatalf("word %q appears %d times in %q but %d times in %q", w, n, in, b[w], out)
			}
		}
		for w := range b {
			if _, ok := a[w]; !ok {
				t.Fatalf("word %q invented: %q -> %q", w, in, out)
			}
		}
	})
}
