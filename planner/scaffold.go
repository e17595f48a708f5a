package planner

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

//go:embed scaffold/*
var scaffoldFS embed.FS

// Scaffold writes a sample project into dir (created if missing):
// lakehouse.yml, models.py (two models and an expectation) and
// top_countries.sql. It plans against a catalog whose namespace sales holds
// a transactions table (id, usd, country, …), such as the repository's
// testdata/sample/transactions. It refuses (ErrAlreadyExists) to overwrite
// any file and returns the files written.
func Scaffold(dir string) ([]string, error) {
	name := projectName(dir)
	entries, err := fs.ReadDir(scaffoldFS, "scaffold")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if _, err := os.Stat(p); err == nil {
			return nil, errdefs.WithHint(errdefs.ErrAlreadyExists, "choose an empty folder: `lakehouse init DIR`",
				"%s already exists; init writes a new project and overwrites nothing", p)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fileErr("create", dir, err)
	}
	var written []string
	for _, e := range entries {
		b, err := scaffoldFS.ReadFile("scaffold/" + e.Name())
		if err != nil {
			return nil, err
		}
		s := strings.ReplaceAll(string(b), "{{name}}", name)
		s = strings.ReplaceAll(s, "{{dir}}", dir)
		p := filepath.Join(dir, e.Name())
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			return nil, fileErr("write", p, err)
		}
		written = append(written, p)
	}
	return written, nil
}

var nonIdent = regexp.MustCompile(`[^A-Za-z0-9_]+`)

// projectName derives a project name from a folder: "euro-report" gives
// euro_report.
func projectName(dir string) string {
	base := filepath.Base(mustAbs(dir))
	n := strings.Trim(nonIdent.ReplaceAllString(base, "_"), "_")
	if n == "" || n[0] >= '0' && n[0] <= '9' {
		n = "pipeline_" + n
	}
	return strings.ToLower(strings.TrimSuffix(n, "_"))
}

func fileErr(verb, path string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return errdefs.New(errdefs.ErrPermissionDenied, "cannot %s %s: permission denied", verb, path)
	}
	return fmt.Errorf("cannot %s %s: %w", verb, path, err)
}
