package iceberg

import (
	"fmt"
	"strings"
	"testing"

	"github.com/lakehouse-dev/lakehouse/catalog"
)

// TestImportProgress imports two CSV files of 2,500 rows each (three
// batches of at most 1,000 rows per file) and checks the reports: rows
// and bytes only grow, never past the input, and end at every row and
// every byte.
func TestImportProgress(t *testing.T) {
	f := newTestFormat(t)
	dir := t.TempDir()
	var paths []string
	var total int64
	for i := range 2 {
		var b strings.Builder
		b.WriteString("id,country\n")
		for r := range 2500 {
			fmt.Fprintf(&b, "%d,c%d\n", i*2500+r, r%7)
		}
		paths = append(paths, writeFile(t, dir, fmt.Sprintf("part%d.csv", i), b.String()))
		total += int64(b.Len())
	}
	var reports []catalog.ImportProgress
	out := mustImport(t, f, catalog.ImportSpec{Sources: paths, Progress: func(p catalog.ImportProgress) { reports = append(reports, p) }})
	if len(reports) < 7 { // the start, then one per batch
		t.Fatalf("%d reports, want one at the start and one per batch: %+v", len(reports), reports)
	}
	prev := catalog.ImportProgress{}
	for i, p := range reports {
		if p.TotalBytes != total {
			t.Fatalf("report %d: total %d bytes, want %d", i, p.TotalBytes, total)
		}
		if p.Rows < prev.Rows || p.Bytes < prev.Bytes || p.Bytes > p.TotalBytes {
			t.Fatalf("report %d goes back or past the input: %+v after %+v", i, p, prev)
		}
		prev = p
	}
	if last := reports[len(reports)-1]; last.Rows != 5000 || last.Bytes != total || out.Rows != 5000 {
		t.Errorf("last report %+v, outcome %d rows; want 5000 rows and %d bytes", last, out.Rows, total)
	}
}
