package query_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/runtime/query"
)

// TestColumnOrder: files imported with their columns in another order
// read back under the table's columns (views read files by position, so
// this checks that data files keep the table's column order); time travel
// to the first state reads its rows only.
func TestColumnOrder(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	svc := openService(t, dir, nil)
	const br = catalog.BranchName("test.evolve")
	tbl := catalog.TableIdent{Namespace: "default", Name: "people"}
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(svc.CreateBranch(ctx, br, catalog.Ref{Name: "main"}))
	must(svc.ImportTable(ctx, catalog.ImportRequest{Branch: br, Table: tbl,
		Sources: []string{writeFile(t, filepath.Join(dir, "a.csv"), "id,Full Name\n1,Ada\n2,Grace\n")}}))
	old, err := svc.Resolve(ctx, catalog.Ref{Name: string(br)})
	must(old, err)
	must(svc.ImportTable(ctx, catalog.ImportRequest{Branch: br, Table: tbl,
		Sources: []string{writeFile(t, filepath.Join(dir, "b.csv"), "Full Name,id\nAlan,3\n")}}))
	for _, c := range []struct {
		ref  catalog.Ref
		want string
	}{
		{catalog.Ref{Name: string(br)}, "id|Full Name\n1|Ada\n2|Grace\n3|Alan"},
		{catalog.Ref{Commit: string(old.ID)}, "id|Full Name\n1|Ada\n2|Grace"},
	} {
		res, err := query.Run(ctx, svc, scans, query.Request{SQL: "SELECT * FROM people", Ref: c.ref})
		if err != nil {
			t.Fatalf("%s: %v", c.ref, err)
		}
		rows := readRows(t, res.Reader)
		res.Close()
		if got := strings.Join(rows, "\n"); got != c.want {
			t.Errorf("%s:\n%s\nwant\n%s (schema evolved: %v)", c.ref, got, c.want, res.Plan.Tables[0].SchemaEvolved)
		}
	}
}
