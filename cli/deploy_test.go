package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	urfave "github.com/urfave/cli/v2"
)

// TestDeployRecipesUseRealFlags checks that every --flag the deployment
// recipes in deploy/ pass to the binary is a global flag or a flag of
// `lakehouse serve` (or `auth init`) (deploy's own test checks them against a literal table;
// this one against the CLI itself).
func TestDeployRecipesUseRealFlags(t *testing.T) {
	app := newApp(&Env{})
	var known []string
	for _, f := range app.Flags {
		known = append(known, f.Names()...)
	}
	// serve, and `auth init` (the control plane's first admin key).
	walkCommands(app.Commands, func(c *urfave.Command) {
		if c.Name == "serve" || c.Name == "init" {
			for _, f := range c.Flags {
				known = append(known, f.Names()...)
			}
		}
	})
	var files []string
	for _, pattern := range []string{"../deploy/kubernetes/*.yaml", "../deploy/systemd/*.service"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 4 {
		t.Fatalf("found only %d recipes under deploy/", len(files))
	}
	flag := regexp.MustCompile(`(?:^|[\s"'])--([a-z][a-z0-9-]*)=`)
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range flag.FindAllStringSubmatch(string(b), -1) {
			if !slices.Contains(known, m[1]) {
				t.Errorf("%s passes --%s, which lakehouse serve does not take", file, m[1])
			}
		}
	}
}
