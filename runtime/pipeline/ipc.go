package pipeline

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/lakehouse-dev/lakehouse/internal/arrowipc"
	"github.com/lakehouse-dev/lakehouse/runtime/query"
)

// A run's tables are Arrow IPC files (scans, model outputs, filtered
// inputs); internal/arrowipc writes, opens, validates and fingerprints
// them. What is here is what the run shows of them.

// ipcSchema returns the schema of an IPC file.
func ipcSchema(path string) (*arrow.Schema, error) {
	f, err := arrowipc.Open(path, arrowipc.Options{})
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Schema(), nil
}

// fingerprint hashes an IPC file's data independently of batch boundaries
// and row order (File.Fingerprint), so that two runs that produce the same
// rows match.
func fingerprint(path string) (fp string, rows int64, err error) {
	f, err := arrowipc.Open(path, arrowipc.Options{})
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	return f.Fingerprint(context.Background())
}

// preview renders the first n rows of an IPC file (of total rows) as a
// small text table.
func preview(path string, n int, total int64) (string, error) {
	f, err := arrowipc.Open(path, arrowipc.Options{})
	if err != nil {
		return "", err
	}
	defer f.Close()
	schema := f.Schema()
	head := make([]string, schema.NumFields())
	for i, fd := range schema.Fields() {
		head[i] = fd.Name
	}
	rows := [][]string{head}
	for i := 0; i < f.NumBatches() && len(rows) <= n; i++ {
		rec, err := f.Batch(i)
		if err != nil {
			return "", err
		}
		err = f.Guard(func() error {
			for r := 0; r < int(rec.NumRows()) && len(rows) <= n; r++ {
				row := make([]string, rec.NumCols())
				for c := range row {
					row[c] = query.TableCell(query.FormatValue(rec.Column(c), r), 40)
				}
				rows = append(rows, row)
			}
			return nil
		})
		rec.Release()
		if err != nil {
			return "", err
		}
	}
	width := make([]int, len(head))
	for _, r := range rows {
		for i, v := range r {
			width[i] = max(width[i], utf8.RuneCountInString(v))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		for i, v := range r {
			if i > 0 {
				b.WriteString("  ")
			}
			b.WriteString(v)
			b.WriteString(strings.Repeat(" ", width[i]-utf8.RuneCountInString(v)))
		}
		b.WriteString("\n")
	}
	if total > int64(len(rows)-1) {
		fmt.Fprintf(&b, "(%d of %d rows)\n", len(rows)-1, total)
	}
	return b.String(), nil
}
