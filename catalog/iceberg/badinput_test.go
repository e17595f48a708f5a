package iceberg

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

func TestBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// setup writes the inputs into dir and returns the sources.
		setup       func(t *testing.T, dir string) []string
		partitionBy []string
		mode        catalog.ImportMode
		class       error
		// wantErr is the exact message, with %DIR% for the input directory.
		wantErr string
	}{
		{
			name: "unbalanced quote",
			setup: func(t *testing.T, dir string) []string {
				return []string{writeFile(t, dir, "a.csv", "id,name\n1,\"abc\n2,def\n")}
			},
			class:   errdefs.ErrInvalidArgument,
			wantErr: `file %DIR%/a.csv: the record starting on line 2: line 3, column 7: extraneous or missing " in quoted-field`,
		},
		{
			name: "bare quote",
			setup: func(t *testing.T, dir string) []string {
				return []string{writeFile(t, dir, "a.csv", "id,name\n1,ab\"c\n")}
			},
			class:   errdefs.ErrInvalidArgument,
			wantErr: `file %DIR%/a.csv: line 2, column 5: bare " in non-quoted-field`,
		},
		{
			name: "ragged row",
			setup: func(t *testing.T, dir string) []string {
				return []string{writeFile(t, dir, "a.csv", "id,name\n1,a\n2\n3,c\n")}
			},
			class:   errdefs.ErrInvalidArgument,
			wantErr: `file %DIR%/a.csv: line 3 has 1 fields but the header has 2`,
		},
		{
			name:    "empty file",
			setup:   func(t *testing.T, dir string) []string { return []string{writeFile(t, dir, "a.csv", "")} },
			class:   errdefs.ErrInvalidArgument,
			wantErr: `file %DIR%/a.csv is empty; a CSV file starts with a header row naming its columns`,
		},
		{
			name:    "header only",
			setup:   func(t *testing.T, dir string) []string { return []string{writeFile(t, dir, "a.csv", "id,name\n")} },
			class:   errdefs.ErrInvalidArgument,
			wantErr: `file %DIR%/a.csv has a header row but no data rows; import needs at least one row to infer column types`,
		},
		{
			name:    "unnamed column",
			setup:   func(t *testing.T, dir string) []string { return []string{writeFile(t, dir, "a.csv", "id,,x\n1,2,3\n")} },
			class:   errdefs.ErrInvalidArgument,
			wantErr: `file %DIR%/a.csv: column 2 of the header row has no name`,
		},
		{
			name: "duplicate column",
			setup: func(t *testing.T, dir string) []string {
				return []string{writeFile(t, dir, "a.csv", "id,x,id\n1,2,3\n")}
			},
			class:   errdefs.ErrInvalidArgument,
			wantErr: `file %DIR%/a.csv: the header row names column "id" twice`,
		},
		{
			name: "invalid utf-8",
			setup: func(t *testing.T, dir string) []string {
				return []string{writeFile(t, dir, "a.csv", "id,x\n1,a\xffb\n")}
			},
			class:   errdefs.ErrInvalidArgument,
			wantErr: `file %DIR%/a.csv: line 2, column "x": the value is not valid UTF-8`,
		},
		{
			name: "parquet with wrong magic",
			setup: func(t *testing.T, dir string) []string {
				return []string{writeFile(t, dir, "a.parquet", "id,name\n1,one\n")}
			},
			class:   errdefs.ErrInvalidArgument,
			wantErr: `file %DIR%/a.parquet is not a Parquet file: it does not start and end with the magic bytes "PAR1"; import reads Parquet files by the .parquet extension; rename the file if it is something else`,
		},
		{
			name: "parquet with a corrupt footer",
			setup: func(t *testing.T, dir string) []string {
				return []string{writeFile(t, dir, "a.parquet", "PAR1garbagegarbage\x05\x00\x00\x00PAR1")}
			},
			class:   errdefs.ErrInvalidArgument,
			wantErr: `file %DIR%/a.parquet: unreadable Parquet file: `,
		},
		{
			name: "second file bad",
			setup: func(t *testing.T, dir string) []string {
				return []string{writeFile(t, dir, "a.csv", "id\n1\n"), writeFile(t, dir, "b.parquet", "PAR")}
			},
			class:   errdefs.ErrInvalidArgument,
			wantErr: `file %DIR%/b.parquet is not a Parquet file: `,
		},
		{
			name: "directory without data files",
			setup: func(t *testing.T, dir string) []string {
				writeFile(t, dir, "d/readme.txt", "hi")
				return []string{filepath.Join(dir, "d")}
			},
			class:   errdefs.ErrNotFound,
			wantErr: `directory %DIR%/d contains no .parquet, .csv, .arrow, .feather or .ipc files`,
		},
		{
			name:    "missing file",
			setup:   func(t *testing.T, dir string) []string { return []string{filepath.Join(dir, "nope.csv")} },
			class:   errdefs.ErrNotFound,
			wantErr: `source %DIR%/nope.csv does not exist`,
		},
		{
			name:    "glob matching nothing",
			setup:   func(t *testing.T, dir string) []string { return []string{filepath.Join(dir, "*.parquet")} },
			class:   errdefs.ErrNotFound,
			wantErr: `source "%DIR%/*.parquet" matches no files`,
		},
		{
			name:    "unsupported extension",
			setup:   func(t *testing.T, dir string) []string { return []string{writeFile(t, dir, "a.json", "{}")} },
			class:   errdefs.ErrInvalidArgument,
			wantErr: `file %DIR%/a.json: unsupported file format ".json"; import reads .parquet, .csv and Arrow IPC (.arrow, .feather, .ipc) files`,
		},
		{
			name: "unknown partition column",
			setup: func(t *testing.T, dir string) []string {
				return []string{writeFile(t, dir, "a.csv", "id,ts\n1,2024-01-01\n")}
			},
			partitionBy: []string{"day(when)"},
			class:       errdefs.ErrInvalidArgument,
			wantErr:     `unknown partition column "when" in "day(when)"; the table's columns are id, ts`,
		},
		{
			name: "bad transform",
			setup: func(t *testing.T, dir string) []string {
				return []string{writeFile(t, dir, "a.csv", "id,ts\n1,2024-01-01\n")}
			},
			partitionBy: []string{"week(ts)"},
			class:       errdefs.ErrInvalidArgument,
			wantErr:     `invalid partition field "week(ts)": unknown transform "week"; ` + partitionHint,
		},
		{
			name:        "transform on the wrong type",
			setup:       func(t *testing.T, dir string) []string { return []string{writeFile(t, dir, "a.csv", "id,ts\n1,x\n")} },
			partitionBy: []string{"day(ts)"},
			class:       errdefs.ErrInvalidArgument,
			wantErr:     `invalid partition field "day(ts)": day cannot be applied to column "ts" of type string`,
		},
		{
			name:    "unknown mode",
			setup:   func(t *testing.T, dir string) []string { return []string{writeFile(t, dir, "a.csv", "id\n1\n")} },
			mode:    "upsert",
			class:   errdefs.ErrInvalidArgument,
			wantErr: `unknown import mode "upsert"; use append, replace or overwrite-partitions`,
		},
		{
			name:    "no sources",
			setup:   func(t *testing.T, dir string) []string { return nil },
			class:   errdefs.ErrInvalidArgument,
			wantErr: `import into sales.transactions: no source files given`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newTestFormat(t)
			dir := t.TempDir()
			_, err := f.Import(context.Background(), catalog.ImportSpec{
				Ident: salesIdent, Sources: tc.setup(t, dir), PartitionBy: tc.partitionBy, Mode: tc.mode})
			want := strings.ReplaceAll(tc.wantErr, "%DIR%", dir)
			if err == nil || !strings.HasPrefix(err.Error(), want) || !errdefs.Is(err, tc.class) {
				t.Fatalf("error = %v\nwant %s (%v)", err, want, tc.class)
			}
			// Nothing was created in the warehouse.
			if ents := listDir(t, f, f.Storage().URI("sales")); len(ents) != 0 {
				t.Errorf("warehouse has %d entries after a failed import", len(ents))
			}
		})
	}
}

// A value that fails while data streams (after the schemas were checked)
// fails the import cleanly: classed error, no leaked Arrow memory, no files
// left in the table directory.
func TestStreamingFailure(t *testing.T) {
	t.Parallel()
	overflow := col{"n", arrow.PrimitiveTypes.Uint64, []any{uint64(7), uint64(1) << 63}}
	for name, write := range map[string]func(t *testing.T, dir string) string{
		"parquet":   func(t *testing.T, dir string) string { return writeParquet(t, dir, "b.parquet", overflow) },
		"arrow ipc": func(t *testing.T, dir string) string { return writeIPC(t, dir, "b.arrow", []col{overflow}) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newTestFormat(t)
			dir := t.TempDir()
			e := mustImport(t, f, catalog.ImportSpec{Sources: []string{writeFile(t, dir, "a.csv", "n\n1\n")}}).Entry
			before := describe(t, f, e)
			src := write(t, dir)
			_, err := f.Import(context.Background(), catalog.ImportSpec{Ident: salesIdent, Current: &e, Sources: []string{src}})
			want := fmt.Sprintf(`import into sales.transactions: file %s: column "n": converting uint64 to int64: `, src)
			if err == nil || !strings.HasPrefix(err.Error(), want) || !errdefs.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("error = %v\nwant %s…", err, want)
			}
			for _, sub := range []string{"data", "metadata"} {
				if n := len(listDir(t, f, before.Location+"/"+sub)); n != map[string]int{"data": 1, "metadata": 3}[sub] {
					t.Errorf("%s has %d files after a failed import: %v", sub, n, listDir(t, f, before.Location+"/"+sub))
				}
			}
		})
	}
}

func TestLongRecords(t *testing.T) {
	t.Parallel()
	t.Run("5 MB line imports", func(t *testing.T) {
		t.Parallel()
		f := newTestFormat(t)
		dir := t.TempDir()
		blob := strings.Repeat("x", 5<<20)
		src := writeFile(t, dir, "a.csv", "id,blob\n1,"+blob+"\n2,short\n")
		out := mustImport(t, f, catalog.ImportSpec{Sources: []string{src}})
		rows := scan(t, out.Entry, "id", "blob")
		if len(rows) != 2 || rows[0] != "1|"+blob || rows[1] != "2|short" {
			t.Errorf("rows: %d, first %d bytes", len(rows), len(rows[0]))
		}
	})
	t.Run("record over the limit fails", func(t *testing.T) {
		t.Parallel()
		f := newTestFormat(t)
		f.opts.maxCSVRecord = 1 << 20
		dir := t.TempDir()
		// An unbalanced quote swallows the rest of a 3 MiB file.
		var b strings.Builder
		b.WriteString("id,name\n1,one\n2,\"two\n")
		for b.Len() < 3<<20 {
			b.WriteString("3,three\n")
		}
		src := writeFile(t, dir, "a.csv", b.String())
		_, err := f.Import(context.Background(), catalog.ImportSpec{Ident: salesIdent, Sources: []string{src}})
		want := fmt.Sprintf("file %s: the record after line 2 is longer than 1 MiB (is a quote unbalanced?)", src)
		if err == nil || err.Error() != want || !errdefs.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("error = %v\nwant %s", err, want)
		}
	})
}

// A big CSV streams: the heap stays far below the file's size.
func TestBigCSV(t *testing.T) {
	t.Parallel()
	size := 50 << 20
	if raceEnabled {
		size = 12 << 20 // the race detector makes parsing ~10x slower
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "big.csv")
	w, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "id,amount,country,day,note")
	rows := 0
	for n := 0; n < size; rows++ {
		k, _ := fmt.Fprintf(bw, "%d,%d.%02d,%s,2024-01-%02d,note number %d for a row\n",
			rows, rows%1000, rows%100, []string{"DE", "FR", "IT"}[rows%3], 1+rows%28, rows)
		n += k
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	w.Close()

	f := newTestFormat(t)
	f.opts.BatchRows = DefaultBatchRows
	var peak atomic.Uint64
	var base runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&base)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
		}
	}()
	out := mustImport(t, f, catalog.ImportSpec{Sources: []string{src}})
	close(done)
	wg.Wait()
	if out.Rows != int64(rows) {
		t.Errorf("rows = %d, want %d", out.Rows, rows)
	}
	info := describe(t, f, out.Entry)
	if info.RowCount != int64(rows) {
		t.Errorf("row count = %d, want %d", info.RowCount, rows)
	}
	t.Logf("%d MiB CSV, %d rows: peak heap in use %d MiB (before %d MiB)", size>>20, rows, peak.Load()>>20, base.HeapInuse>>20)
	// Memory is bounded by a Parquet row group and a few batches, not by
	// the file: a 150 MiB file peaks at about the same heap as this one.
	if grew := int64(peak.Load()) - int64(base.HeapInuse); grew > 256<<20 {
		t.Errorf("heap grew by %d MiB while importing a %d MiB file", grew>>20, size>>20)
	}
}
