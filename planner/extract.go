package planner

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

//go:embed extractor.py
var extractorScript string

// Extraction is what the extractor read from a project's Python files.
type Extraction struct {
	// Python is the version of the interpreter that parsed the files.
	Python string     `json:"python"`
	Files  []fileInfo `json:"files"`
	// Took is the wall time of the extractor process.
	Took time.Duration `json:"-"`
}

type fileInfo struct {
	Path      string     `json:"path"`
	Errors    []pyError  `json:"errors"`
	Functions []function `json:"functions"`
}

type pyError struct {
	Line int    `json:"line"`
	Col  int    `json:"col"`
	Msg  string `json:"msg"`
}

type function struct {
	Name       string      `json:"name"`
	Line       int         `json:"line"`
	Decorators []decorator `json:"decorators"`
	Params     []param     `json:"params"`
}

type decorator struct {
	Name   string             `json:"name"`
	Line   int                `json:"line"`
	Call   bool               `json:"call"`
	Args   []literal          `json:"args"`
	Kwargs map[string]literal `json:"kwargs"`
}

type param struct {
	Name    string             `json:"name"`
	Line    int                `json:"line"`
	Marker  string             `json:"marker"`
	Default string             `json:"default"`
	Args    []literal          `json:"args"`
	Kwargs  map[string]literal `json:"kwargs"`
}

// literal is one decorator or marker argument. OK is false when it was not
// a literal (the extractor reported that already).
type literal struct {
	Line  int             `json:"line"`
	Value json.RawMessage `json:"value"`
	OK    bool            `json:"ok"`
}

// Extract parses the project's Python files with the interpreter at python
// in one process. It returns an ErrUnavailable error when no interpreter
// is given and ErrInternal if the extractor fails; problems in the files
// are in the Extraction.
func Extract(ctx context.Context, python, dir string, files []string) (*Extraction, error) {
	if len(files) == 0 {
		return &Extraction{}, nil
	}
	if python == "" {
		return nil, errdefs.WithHint(errdefs.ErrUnavailable,
			"install Python 3.9 or newer, or point LAKEHOUSE_PYTHON at one",
			"planning Python models needs a Python 3.9+ interpreter and none was found")
	}
	args := []string{"-I", "-S", "-B", "-c", extractorScript}
	for _, f := range files {
		args = append(args, filepath.Join(dir, f))
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, python, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("python extractor (%s) failed: %v: %s: %w", python, err,
			strings.TrimSpace(lastLines(stderr.String(), 5)), errdefs.ErrInternal)
	}
	var x Extraction
	if err := json.Unmarshal(stdout.Bytes(), &x); err != nil {
		return nil, fmt.Errorf("python extractor (%s) printed invalid JSON: %v: %w", python, err, errdefs.ErrInternal)
	}
	x.Took = time.Since(start)
	// Report paths relative to the project folder.
	for i := range x.Files {
		x.Files[i].Path = files[i]
	}
	return &x, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
