package flight

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/catalog/iceberg"
	"github.com/lakehouse-dev/lakehouse/catalog/memstore"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// newLocal returns an embedded catalog over an in-memory store and a
// warehouse in a temporary directory, with branch dev and namespace sales.
func newLocal(t testing.TB) *catalog.Local {
	t.Helper()
	ctx := context.Background()
	f, err := iceberg.New(iceberg.Options{Warehouse: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := catalog.NewLocal(ctx, memstore.New(), f, catalog.LocalOptions{Author: "tester"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	if _, err := svc.CreateBranch(ctx, "tester.dev", catalog.Ref{Name: "main"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateNamespace(ctx, "tester.dev", "sales", catalog.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	return svc
}

// testServer is a server over its own embedded catalog on a loopback port,
// and a client of it.
type testServer struct {
	srv    *Server
	svc    *catalog.Local
	client *Client
	dir    string // the upload directory
	addr   string
}

func startTestServer(t testing.TB, opts Options) *testServer {
	t.Helper()
	svc := newLocal(t)
	if opts.Catalog == nil {
		opts.Catalog = svc
	}
	if opts.UploadDir == "" {
		opts.UploadDir = filepath.Join(t.TempDir(), "uploads")
	}
	srv, c, addr := serveTest(t, opts, DialOptions{Author: "tester"})
	return &testServer{srv: srv, svc: svc, client: c, dir: opts.UploadDir, addr: addr}
}

// uploadFiles lists the files staged in the upload directory.
func (ts *testServer) uploadFiles(t testing.TB) []string {
	t.Helper()
	ents, err := os.ReadDir(ts.dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func writeFile(t testing.TB, path, text string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeArrow writes rec as an Arrow IPC file (ext .arrow) or a Parquet
// file (.parquet).
func writeArrow(t testing.TB, path string, rec arrow.RecordBatch) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if filepath.Ext(path) == ".parquet" {
		w, err := pqarrow.NewFileWriter(rec.Schema(), f, nil, pqarrow.DefaultWriterProps())
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return path
	}
	w, err := ipc.NewFileWriter(f, ipc.WithSchema(rec.Schema()))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// nanoRecord is a batch with a timestamp[ns] column.
func nanoRecord() arrow.RecordBatch {
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Nanosecond}, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	b.Field(0).(*array.Int64Builder).AppendValues([]int64{1, 2, 3}, nil)
	b.Field(1).(*array.TimestampBuilder).AppendValues([]arrow.Timestamp{1_000_000_001, 2_000_000_002, 3}, nil)
	return b.NewRecordBatch()
}

// tableState is what an import left in a table, for comparing two
// catalogs: its schema, partition spec, import history and rows.
func tableState(t testing.TB, svc catalog.Service, id catalog.TableIdent) string {
	t.Helper()
	ctx := context.Background()
	info, err := svc.GetTable(ctx, catalog.Ref{Name: "tester.dev"}, id)
	if errdefs.Is(err, errdefs.ErrNotFound) {
		return "(no table)"
	}
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, c := range info.Schema {
		fmt.Fprintf(&b, "column %s %s required=%v\n", c.Name, c.Type, c.Required)
	}
	for _, p := range info.PartitionSpec {
		fmt.Fprintf(&b, "partition %+v\n", p)
	}
	fmt.Fprintf(&b, "rows %d files %d\n", info.RowCount, info.FileCount)
	if info.Snapshot != nil {
		fmt.Fprintf(&b, "sources %s\nmode %s\n", info.Snapshot.Summary[iceberg.PropImportSources], info.Snapshot.Summary[iceberg.PropImportMode])
	}
	var rows []string
	for _, f := range info.Files {
		rows = append(rows, parquetRows(t, f.Path)...)
	}
	slices.Sort(rows)
	b.WriteString(strings.Join(rows, "\n"))
	return b.String()
}

// parquetRows reads a data file's rows as text.
func parquetRows(t testing.TB, path string) []string {
	t.Helper()
	path = strings.TrimPrefix(path, "file://")
	rdr, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Close()
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	tr := array.NewTableReader(tbl, -1)
	defer tr.Release()
	var out []string
	for tr.Next() {
		rec := tr.RecordBatch()
		for i := range int(rec.NumRows()) {
			var cells []string
			for j, c := range rec.Columns() {
				cells = append(cells, rec.ColumnName(j)+"="+c.ValueStr(i))
			}
			out = append(out, strings.Join(cells, " "))
		}
	}
	return out
}

// outcome is an import's result or error as text.
func outcome(res *catalog.ImportResult, err error) string {
	if err != nil {
		msg, hint := errdefs.Split(err)
		return fmt.Sprintf("error %s: %s (hint %q)", errdefs.ClassName(err), msg, hint)
	}
	return fmt.Sprintf("created=%v imported=%q skipped=%q rows=%d bytes=%d warnings=%q commit=%v",
		res.Created, res.Imported, res.Skipped, res.Rows, res.Bytes, res.Warnings, res.Commit != nil)
}

// TestImportMatchesEmbedded runs the same imports embedded and through a
// server: the results, errors and tables must be the same.
func TestImportMatchesEmbedded(t *testing.T) {
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	writeFile(t, p("a.csv"), "id,code,note,when\n1,007,x,2026-01-02T03:04:05\n2,010,,2026-01-03T00:00:00\n")
	writeFile(t, p("b.csv"), "id,code,note,when\n3,1.50,,\n")
	writeFile(t, p("codes.csv"), "id,code,note,when\n4,abc,y,2026-01-04T00:00:00\n")
	writeFile(t, p("bad.csv"), "id,code\n1,2,3\n")
	writeFile(t, p("other.csv"), "id,extra\n1,2\n")
	writeFile(t, p("header.csv"), "id,code\n")
	os.MkdirAll(p("dir"), 0o755)
	writeFile(t, p("dir/x.csv"), "id,code,note,when\n5,5,z,\n")
	writeFile(t, p("dir/_SUCCESS"), "")
	rec := nanoRecord()
	defer rec.Release()
	writeArrow(t, p("ns.parquet"), rec)
	writeArrow(t, p("ns.arrow"), rec)
	plain := stringsRecord("id", "name")
	defer plain.Release()
	writeArrow(t, p("plain.parquet"), plain)

	type step struct {
		table   string
		sources []string
		mode    catalog.ImportMode
		by      []string
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"csv new table", []step{{table: "t", sources: []string{p("a.csv")}}}},
		// The table's code column is a string: "007" stays "007".
		{"csv text kept for a string column", []step{
			{table: "t", sources: []string{p("codes.csv")}},
			{table: "t", sources: []string{p("a.csv"), p("b.csv")}},
		}},
		{"csv widened and empty columns", []step{
			{table: "t", sources: []string{p("b.csv")}},
			{table: "t", sources: []string{p("a.csv")}},
		}},
		{"already imported files are skipped", []step{
			{table: "t", sources: []string{p("a.csv")}},
			{table: "t", sources: []string{p("a.csv"), p("dir")}},
			{table: "t", sources: []string{p("*.csv"), p("dir")}},
		}},
		{"replace changes the columns", []step{
			{table: "t", sources: []string{p("a.csv")}},
			{table: "t", sources: []string{p("other.csv")}, mode: catalog.ImportReplace},
		}},
		{"partitioned new table", []step{{table: "t", sources: []string{p("a.csv"), p("b.csv")}, by: []string{"id"}}}},
		// Embedded mode copies such a file as is, a server rewrites it:
		// the same rows either way.
		{"parquet of the table's types", []step{
			{table: "t", sources: []string{p("plain.parquet")}},
			{table: "t", sources: []string{p("plain.parquet")}},
		}},
		{"parquet nanoseconds warn", []step{{table: "t", sources: []string{p("ns.parquet")}}}},
		{"arrow ipc nanoseconds warn", []step{
			{table: "t", sources: []string{p("ns.arrow")}},
			{table: "t", sources: []string{p("ns.parquet")}},
		}},
		{"schema conflict", []step{
			{table: "t", sources: []string{p("a.csv")}},
			{table: "t", sources: []string{p("other.csv")}},
			{table: "t", sources: []string{p("ns.parquet")}},
		}},
		{"bad files", []step{
			{table: "t", sources: []string{p("bad.csv")}},
			{table: "t", sources: []string{p("header.csv")}},
			{table: "t", sources: []string{p("missing.csv")}},
			{table: "t", sources: []string{p("nomatch*.csv")}},
			{table: "t", sources: []string{p("dir/_SUCCESS")}},
		}},
		{"missing namespace", []step{{table: "nowhere.t", sources: []string{p("a.csv")}}}},
		{"partitioned-by on an existing table", []step{
			{table: "t", sources: []string{p("a.csv")}},
			{table: "t", sources: []string{p("b.csv")}, by: []string{"id"}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			local := newLocal(t)
			ts := startTestServer(t, Options{})
			for i, st := range tc.steps {
				name := st.table
				if !strings.Contains(name, ".") {
					name = "sales." + name
				}
				id, err := catalog.ParseTableIdent(name, "")
				if err != nil {
					t.Fatal(err)
				}
				req := catalog.ImportRequest{Branch: "tester.dev", Table: id, Sources: st.sources, Mode: st.mode, PartitionBy: st.by,
					Commit: catalog.CommitOptions{Message: "step"}}
				want := outcome(local.ImportTable(ctx, req))
				got := outcome(ts.client.ImportTable(ctx, req))
				if got != want {
					t.Errorf("step %d: import\n got  %s\n want %s", i, got, want)
				}
				if w, g := tableState(t, local, id), tableState(t, ts.svc, id); g != w {
					t.Errorf("step %d: table\n--- got\n%s\n--- want\n%s", i, g, w)
				}
				if files := ts.uploadFiles(t); len(files) > 0 {
					t.Errorf("step %d: uploads left after the import: %v", i, files)
				}
			}
		})
	}
}

// TestImportRefusesServerPaths: a client imports only what it uploads.
func TestImportRefusesServerPaths(t *testing.T) {
	ts := startTestServer(t, Options{})
	ctx := context.Background()
	before := head(t, ts.svc)
	for _, src := range []string{"/etc/passwd", "upload:", "s3://bucket/x.parquet", "upload:nosuchid"} {
		err := ts.client.call(ctx, ActionImportTable, ImportBody{Branch: "tester.dev", Namespace: "sales", Table: "t", Sources: []string{src}}, nil)
		want := errdefs.ErrInvalidArgument
		if src == "upload:nosuchid" {
			want = errdefs.ErrNotFound
		}
		if !errdefs.Is(err, want) {
			t.Errorf("source %q: got %v, want %v", src, err, want)
		}
	}
	if h := head(t, ts.svc); h != before {
		t.Errorf("the branch moved: %s -> %s", before, h)
	}
}

// TestClientRefusesS3Sources: the client says plainly that it imports
// its own files, not s3:// objects, before sending anything.
func TestClientRefusesS3Sources(t *testing.T) {
	ts := startTestServer(t, Options{})
	before := head(t, ts.svc)
	_, err := ts.client.ImportTable(context.Background(), catalog.ImportRequest{Branch: "tester.dev",
		Table: catalog.TableIdent{Namespace: "sales", Name: "t"}, Sources: []string{"s3://bucket/x.parquet"}})
	if !errdefs.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "not s3:// objects") {
		t.Errorf("got %v, want an invalid argument about s3:// sources", err)
	}
	if h := head(t, ts.svc); h != before {
		t.Errorf("the branch moved: %s -> %s", before, h)
	}
}

func head(t testing.TB, svc catalog.Service) catalog.CommitID {
	t.Helper()
	b, err := svc.GetBranch(context.Background(), "tester.dev")
	if err != nil {
		t.Fatal(err)
	}
	return b.Head
}

// localFile resolves one local file as an import does.
func localFile(t testing.TB, path string) iceberg.LocalFile {
	t.Helper()
	fs, err := iceberg.ExpandSources([]string{path})
	if err != nil || len(fs) != 1 {
		t.Fatalf("%s: %v %v", path, fs, err)
	}
	return fs[0]
}

// TestUploadsExpire: an upload no import names is removed after the TTL,
// and its id no longer works.
func TestUploadsExpire(t *testing.T) {
	ts := startTestServer(t, Options{UploadTTL: 200 * time.Millisecond})
	ctx := context.Background()
	f := writeFile(t, filepath.Join(t.TempDir(), "a.csv"), "id\n1\n")
	up, err := ts.client.Upload(ctx, localFile(t, f))
	if err != nil {
		t.Fatal(err)
	}
	if up.Rows != 1 || len(ts.uploadFiles(t)) != 1 {
		t.Fatalf("upload %+v, files %v", up, ts.uploadFiles(t))
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(ts.uploadFiles(t)) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if files := ts.uploadFiles(t); len(files) > 0 {
		t.Fatalf("upload not removed after its TTL: %v", files)
	}
	err = ts.client.call(ctx, ActionImportTable, ImportBody{Branch: "tester.dev", Namespace: "sales", Table: "t",
		Sources: []string{UploadSourcePrefix + up.UploadID}}, nil)
	if !errdefs.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("import of an expired upload: %v", err)
	}
	ts.srv.uploads.mu.Lock()
	defer ts.srv.uploads.mu.Unlock()
	if ts.srv.uploads.bytes != 0 {
		t.Errorf("staged bytes still counted: %d", ts.srv.uploads.bytes)
	}
}

// TestUploadBound: uploads past MaxUploadBytes fail with a clear error and
// leave nothing behind.
func TestUploadBound(t *testing.T) {
	ts := startTestServer(t, Options{MaxUploadBytes: 64 << 10})
	ctx := context.Background()
	var b strings.Builder
	b.WriteString("id,text\n")
	for i := range 20000 {
		fmt.Fprintf(&b, "%d,row number %d\n", i, i)
	}
	f := writeFile(t, filepath.Join(t.TempDir(), "big.csv"), b.String())
	before := head(t, ts.svc)
	_, err := ts.client.ImportTable(ctx, catalog.ImportRequest{Branch: "tester.dev", Table: catalog.TableIdent{Namespace: "sales", Name: "t"},
		Sources: []string{f}})
	if !errdefs.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "at most 64.0 KiB of uploads") {
		t.Fatalf("got %v, want the bound's error", err)
	}
	if h := head(t, ts.svc); h != before {
		t.Errorf("the branch moved")
	}
	if files := ts.uploadFiles(t); len(files) > 0 {
		t.Errorf("uploads left: %v", files)
	}
	ts.srv.uploads.mu.Lock()
	defer ts.srv.uploads.mu.Unlock()
	if ts.srv.uploads.bytes != 0 {
		t.Errorf("staged bytes still counted: %d", ts.srv.uploads.bytes)
	}
}

type countingSender struct{ msgs, maxBody int }

func (c *countingSender) Send(d *flight.FlightData) error {
	c.msgs++
	c.maxBody = max(c.maxBody, len(d.DataBody))
	return nil
}

// TestUploadBatchesBounded: a batch larger than uploadBatchBytes goes out
// in slices under it.
func TestUploadBatchesBounded(t *testing.T) {
	b := array.NewInt64Builder(memory.DefaultAllocator)
	n := uploadBatchBytes/8*2 + 1000
	for i := range n {
		b.Append(int64(i))
	}
	col := b.NewArray()
	b.Release()
	sc := arrow.NewSchema([]arrow.Field{{Name: "n", Type: arrow.PrimitiveTypes.Int64}}, nil)
	rec := array.NewRecordBatch(sc, []arrow.Array{col}, int64(n))
	col.Release()
	defer rec.Release()
	var s countingSender
	w := flight.NewRecordWriter(&s, ipc.WithSchema(sc))
	if err := writeBounded(w, rec); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if s.msgs != 1+3 || s.maxBody > uploadBatchBytes+1024 {
		t.Errorf("%d messages, the largest body %d bytes", s.msgs, s.maxBody)
	}
}

// roleAuth takes the key as "user:role".
type roleAuth struct{}

func (roleAuth) Authenticate(_ context.Context, key string) (Principal, error) {
	user, role, ok := strings.Cut(key, ":")
	if !ok {
		return Principal{}, errdefs.New(errdefs.ErrUnauthenticated, "no key")
	}
	return Principal{User: user, Role: Role(role)}, nil
}

// TestUploadsBelongToTheirUser: a reader uploads nothing, and a writer
// imports only its own uploads, into its own branches.
func TestUploadsBelongToTheirUser(t *testing.T) {
	ts := startTestServer(t, Options{Auth: roleAuth{}})
	ctx := context.Background()
	as := func(key string) *Client {
		c, err := Dial(ts.addr, DialOptions{APIKey: key})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	f := localFile(t, writeFile(t, filepath.Join(t.TempDir(), "a.csv"), "id\n1\n"))
	if _, err := as("rita:reader").Upload(ctx, f); !errdefs.Is(err, errdefs.ErrPermissionDenied) {
		t.Errorf("a reader's upload: %v", err)
	}
	up, err := as("tester:writer").Upload(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	body := ImportBody{Branch: "tester.dev", Namespace: "sales", Table: "t", Sources: []string{UploadSourcePrefix + up.UploadID}}
	if err := as("bob:writer").call(ctx, ActionImportTable, body, nil); !errdefs.Is(err, errdefs.ErrPermissionDenied) {
		t.Errorf("another writer's import into tester.dev: %v", err)
	}
	body.Branch = "bob.dev"
	if err := as("bob:writer").call(ctx, ActionImportTable, body, nil); !errdefs.Is(err, errdefs.ErrNotFound) {
		t.Errorf("another writer's import of the upload: %v", err)
	}
	body.Branch = "tester.dev"
	var res ImportResult
	if err := as("tester:writer").call(ctx, ActionImportTable, body, &res); err != nil || res.Commit == nil || res.Commit.Author != "tester" {
		t.Fatalf("the writer's import of its upload: %+v %v", res, err)
	}
}

// TestCSVTextUploads: CSV text in string or large string columns is typed
// by the server as a local CSV file would be.
func TestCSVTextUploads(t *testing.T) {
	ts := startTestServer(t, Options{})
	ctx := context.Background()
	for i, typ := range []arrow.DataType{arrow.BinaryTypes.String, arrow.BinaryTypes.LargeString} {
		sc := arrow.NewSchema([]arrow.Field{{Name: "id", Type: typ, Nullable: true}, {Name: "day", Type: typ, Nullable: true}}, nil)
		b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
		for j := range 2 {
			b.Field(j).(array.StringLikeBuilder).Append("7")
			b.Field(j).AppendNull()
		}
		b.Field(1).(array.StringLikeBuilder).Append("2026-01-02")
		b.Field(0).(array.StringLikeBuilder).Append("8")
		rec := b.NewRecordBatch()
		b.Release()
		cmd, _ := json.Marshal(UploadCommand{Upload: &Upload{Name: fmt.Sprintf("/home/me/%d.csv", i), Size: 1, MtimeNs: 1, Format: "csv"}})
		up, err := putBatch(t, ts.client.fc, cmd, rec)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
		table := fmt.Sprintf("t%d", i)
		if err := ts.client.call(ctx, ActionImportTable, ImportBody{Branch: "tester.dev", Namespace: "sales", Table: table,
			Sources: []string{UploadSourcePrefix + up.UploadID}}, nil); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		got := tableState(t, ts.svc, catalog.TableIdent{Namespace: "sales", Name: table})
		if !strings.Contains(got, "column id long") || !strings.Contains(got, "column day string") || !strings.Contains(got, "id=8 day=2026-01-02") {
			t.Errorf("%s:\n%s", typ, got)
		}
	}
}

// FuzzUploadCommand: any descriptor command is an upload or a clear
// INVALID_ARGUMENT, never a panic.
func FuzzUploadCommand(f *testing.F) {
	for _, s := range []string{`{"upload": {"name": "a.csv", "size": 1, "mtime_ns": 2}}`, `{"upload": {"name": "x", "format": "csv"}}`,
		`{}`, `{"upload": null}`, `[`, `{"upload": {"name": "\u0000"}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		up, err := readUpload(&flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: b})
		if err != nil {
			if !errdefs.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("%q: %v", b, err)
			}
			return
		}
		if strings.TrimSpace(up.Name) == "" || up.Size < 0 || up.MtimeNs < 0 || (up.Format != "" && up.Format != catalog.StagedCSV) {
			t.Fatalf("%q: accepted %+v", b, up)
		}
	})
}
