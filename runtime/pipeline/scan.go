package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/arrowipc"
	"github.com/lakehouse-dev/lakehouse/planner"
	"github.com/lakehouse-dev/lakehouse/runtime/duckdb"
	"github.com/lakehouse-dev/lakehouse/runtime/query"
)

// scanner reads catalog tables into IPC files, once per distinct
// (table, commit, columns, filter), with the columns and filter pushed
// down to the scan (file pruning, projection) as in the query path.
type scanner struct {
	svc    catalog.Service
	tables catalog.TableScanner
	dir    string
	start  *catalog.Commit

	mu    sync.Mutex
	scans map[string]*scanResult
	n     int
}

type scanResult struct {
	once sync.Once
	path string
	err  error
}

func newScanner(svc catalog.Service, tables catalog.TableScanner, runDir string, start *catalog.Commit) *scanner {
	return &scanner{svc: svc, tables: tables, dir: filepath.Join(runDir, "in"), start: start, scans: map[string]*scanResult{}}
}

// scanSQL is the query that reads an input.
func scanSQL(in planner.Input) (string, error) {
	id, err := catalog.ParseTableIdent(in.Table, "")
	if err != nil {
		return "", err
	}
	cols := "*"
	if len(in.Columns) > 0 {
		q := make([]string, len(in.Columns))
		for i, c := range in.Columns {
			q[i] = duckdb.Ident(c)
		}
		cols = strings.Join(q, ", ")
	}
	sql := "SELECT " + cols + " FROM " + duckdb.Ident(string(id.Namespace)) + "." + duckdb.Ident(id.Name)
	if f := strings.TrimSpace(in.Filter); f != "" {
		sql += " WHERE (" + f + ")"
	}
	return sql, nil
}

// scan returns the IPC file holding the input's rows.
func (s *scanner) scan(ctx context.Context, in planner.Input) (string, error) {
	commit := in.Commit
	if commit == "" {
		commit = string(s.start.ID)
	}
	sql, err := scanSQL(in)
	if err != nil {
		return "", err
	}
	key := commit + "\x00" + sql
	s.mu.Lock()
	res, ok := s.scans[key]
	if !ok {
		res = &scanResult{}
		s.scans[key] = res
		s.n++
		res.path = filepath.Join(s.dir, fmt.Sprintf("%s-%d.arrow", safeName(in.Table), s.n))
	}
	s.mu.Unlock()
	res.once.Do(func() {
		if err := os.MkdirAll(s.dir, 0o755); err != nil {
			res.err = err
			return
		}
		q, err := query.Run(ctx, s.svc, s.tables, query.Request{SQL: sql, Ref: catalog.Ref{Commit: commit}})
		if err != nil {
			res.err = err
			return
		}
		defer q.Close()
		if _, err := arrowipc.Write(ctx, res.path, q.Reader); err != nil {
			res.err = err
			return
		}
		os.Chmod(res.path, 0o444)
	})
	return res.path, res.err
}

// safeName makes a string usable in a file name.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.' {
			return r
		}
		return '_'
	}, s)
}
