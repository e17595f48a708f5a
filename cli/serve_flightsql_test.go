package cli

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	fsql "github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	_ "github.com/apache/arrow-go/v18/arrow/flight/flightsql/driver"
	flightgen "github.com/apache/arrow-go/v18/arrow/flight/gen/flight"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/lakehouse-dev/lakehouse/flight/flightsql"
	"github.com/lakehouse-dev/lakehouse/internal/arrowipc/ipctest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// flightSQLData is the serve data (sales.transactions on main) plus a
// tag v1 at main and a table sales.extra only on tester.setup.
func flightSQLData(t *testing.T) string {
	t.Helper()
	dataDir := setupServeData(t)
	csv := filepath.Join(t.TempDir(), "extra.csv")
	if err := os.WriteFile(csv, []byte("id,name\n1,a\n2,b\n3,c\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"tag", "create", "v1", "--from-ref", "main"},
		{"table", "import", "sales.extra", "--from", csv, "-b", "tester.setup"},
	} {
		if out, code := runCLI(t, dataDir, args...); code != 0 {
			t.Fatalf("lakehouse %s: exit %d\n%s", strings.Join(args, " "), code, out)
		}
	}
	return dataDir
}

func sqlClient(t *testing.T, addr string, mw ...arrowflight.ClientMiddleware) *fsql.Client {
	t.Helper()
	c, err := fsql.NewClient(strings.TrimPrefix(addr, "grpc://"), nil, mw, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// fetch returns a function that reads every endpoint of a FlightInfo
// into rows of strings (ValueStr): fetch(t, ctx, c)(c.Execute(ctx, sql)).
func fetch(t *testing.T, ctx context.Context, c *fsql.Client) func(*arrowflight.FlightInfo, error) [][]string {
	return func(info *arrowflight.FlightInfo, err error) [][]string {
		t.Helper()
		rows, err := read(ctx, c, info, err)
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
}

// read reads every endpoint of info (or returns err).
func read(ctx context.Context, c *fsql.Client, info *arrowflight.FlightInfo, err error) ([][]string, error) {
	if err != nil {
		return nil, err
	}
	var rows [][]string
	for _, ep := range info.GetEndpoint() {
		r, err := c.DoGet(ctx, ep.GetTicket())
		if err != nil {
			return nil, err
		}
		for r.Next() {
			rows = append(rows, batchRows(r.RecordBatch())...)
		}
		err = r.Err()
		r.Release()
		if err != nil {
			return nil, err
		}
	}
	return rows, nil
}

func batchRows(b arrow.RecordBatch) [][]string {
	var rows [][]string
	for i := 0; i < int(b.NumRows()); i++ {
		row := make([]string, b.NumCols())
		for j, col := range b.Columns() {
			row[j] = col.ValueStr(i)
		}
		rows = append(rows, row)
	}
	return rows
}

// cliRows is what `lakehouse query -O json` prints for sql at ref, as
// rows of strings in the order of cols.
func cliRows(t *testing.T, p *serveProc, ref, sql string, cols ...string) [][]string {
	t.Helper()
	out, code := runCLI(t, p.dataDir, "--addr", p.hostPort(), "query", sql, "-r", ref, "-O", "json")
	if code != 0 {
		t.Fatalf("query at %s: exit %d\n%s", ref, code, out)
	}
	var objs []map[string]any
	if err := json.Unmarshal([]byte(out), &objs); err != nil {
		t.Fatalf("query output: %v\n%s", err, out)
	}
	var rows [][]string
	for _, o := range objs {
		row := make([]string, len(cols))
		for i, c := range cols {
			b, _ := json.Marshal(o[c])
			row[i] = strings.Trim(string(b), `"`)
		}
		rows = append(rows, row)
	}
	return rows
}

func wantStatus(t *testing.T, what string, err error, code codes.Code, msg string) {
	t.Helper()
	st, _ := status.FromError(err)
	if err == nil || st.Code() != code || !strings.Contains(st.Message(), msg) {
		t.Fatalf("%s: got %v, want %s containing %q", what, err, code, msg)
	}
}

// TestFlightSQL drives the Flight SQL side of a real `lakehouse serve`
// with arrow-go's flightsql client: metadata, queries at two refs,
// session options, prepared statements, and the refusals.
func TestFlightSQL(t *testing.T) {
	p := startServe(t, flightSQLData(t), "127.0.0.1:0")
	defer p.stop(time.Minute)
	ctx := context.Background()
	c := sqlClient(t, p.Addr)

	t.Run("catalogs are refs", func(t *testing.T) {
		got := fetch(t, ctx, c)(c.GetCatalogs(ctx))
		want := [][]string{{"main"}, {"tester.setup"}, {"v1"}}
		if !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("catalogs %v, want %v", got, want)
		}
	})
	t.Run("schemas are namespaces", func(t *testing.T) {
		main := "main"
		got := fetch(t, ctx, c)(c.GetDBSchemas(ctx, &fsql.GetDBSchemasOpts{Catalog: &main}))
		want := [][]string{{"main", "default"}, {"main", "load"}, {"main", "sales"}}
		if !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("schemas %v, want %v", got, want)
		}
		pattern := "sa%"
		got = fetch(t, ctx, c)(c.GetDBSchemas(ctx, &fsql.GetDBSchemasOpts{DbSchemaFilterPattern: &pattern}))
		want = [][]string{{"main", "sales"}, {"tester.setup", "sales"}, {"v1", "sales"}}
		if !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("schemas like sa%% %v, want %v", got, want)
		}
		bad := "nosuch.branch"
		info, err := c.GetDBSchemas(ctx, &fsql.GetDBSchemasOpts{Catalog: &bad})
		_, err = read(ctx, c, info, err)
		wantStatus(t, "unknown catalog", err, codes.NotFound, "nosuch.branch")
	})
	t.Run("tables with schemas", func(t *testing.T) {
		ref := "tester.setup"
		info, err := c.GetTables(ctx, &fsql.GetTablesOpts{Catalog: &ref, IncludeSchema: true})
		if err != nil {
			t.Fatal(err)
		}
		r, err := c.DoGet(ctx, info.Endpoint[0].Ticket)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Release()
		var names []string
		for r.Next() {
			b := r.RecordBatch()
			for i := 0; i < int(b.NumRows()); i++ {
				names = append(names, b.Column(1).ValueStr(i)+"."+b.Column(2).ValueStr(i)+":"+b.Column(3).ValueStr(i))
				s, err := arrowflight.DeserializeSchema(b.Column(4).(*array.Binary).Value(i), memory.DefaultAllocator)
				if err != nil {
					t.Fatal(err)
				}
				if b.Column(2).ValueStr(i) == "extra" && (s.NumFields() != 2 || s.Field(0).Name != "id") {
					t.Fatalf("schema of sales.extra: %v", s)
				}
			}
		}
		if want := []string{"sales.extra:TABLE", "sales.transactions:TABLE"}; !slices.Equal(names, want) {
			t.Fatalf("tables at tester.setup %v, want %v", names, want)
		}
		main := "main"
		got := fetch(t, ctx, c)(c.GetTables(ctx, &fsql.GetTablesOpts{Catalog: &main}))
		if want := [][]string{{"main", "sales", "transactions", "TABLE"}}; !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("tables at main %v, want %v", got, want)
		}
		got = fetch(t, ctx, c)(c.GetTableTypes(ctx))
		if want := [][]string{{"TABLE"}}; !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("table types %v", got)
		}
	})
	t.Run("sql info", func(t *testing.T) {
		got := fetch(t, ctx, c)(c.GetSqlInfo(ctx, []fsql.SqlInfo{fsql.SqlInfoFlightSqlServerName, fsql.SqlInfoFlightSqlServerReadOnly}))
		if len(got) != 2 || !strings.Contains(got[0][1], "lakehouse") || !strings.Contains(got[1][1], "true") {
			t.Fatalf("sql info %v", got)
		}
	})

	const query = "SELECT count(*) AS n, sum(id) AS s FROM sales.transactions"
	t.Run("queries at a ref by header", func(t *testing.T) {
		for _, ref := range []string{"main", "v1", "tester.setup"} {
			hctx := metadata.AppendToOutgoingContext(ctx, flightsql.HeaderRef, ref)
			got := fetch(t, hctx, c)(c.Execute(hctx, query))
			if want := cliRows(t, p, ref, query, "n", "s"); !slices.EqualFunc(got, want, slices.Equal) {
				t.Fatalf("at %s: %v, lakehouse query gives %v", ref, got, want)
			}
		}
		hctx := metadata.AppendToOutgoingContext(ctx, flightsql.HeaderRef, "tester.setup", flightsql.HeaderNamespace, "sales")
		got := fetch(t, hctx, c)(c.Execute(hctx, "SELECT id, name FROM extra ORDER BY id"))
		if want := cliRows(t, p, "tester.setup", "SELECT id, name FROM sales.extra ORDER BY id", "id", "name"); !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("extra at tester.setup: %v, want %v", got, want)
		}
		_, err := c.Execute(ctx, "SELECT * FROM sales.extra")
		wantStatus(t, "sales.extra at main", err, codes.NotFound, "extra")
		hctx = metadata.AppendToOutgoingContext(ctx, flightsql.HeaderRef, "no such ref")
		_, err = c.Execute(hctx, query)
		wantStatus(t, "bad ref header", err, codes.InvalidArgument, "no such ref")
	})
	t.Run("queries at a ref by session option", func(t *testing.T) {
		sc := sqlClient(t, p.Addr, arrowflight.NewClientCookieMiddleware())
		// GetSqlInfo first, as ADBC does on connect: the session's cookie
		// comes on that unary call.
		fetch(t, ctx, sc)(sc.GetSqlInfo(ctx, []fsql.SqlInfo{fsql.SqlInfoFlightSqlServerName}))
		opts, err := arrowflight.NewSessionOptionValues(map[string]any{flightsql.OptionCatalog: "tester.setup", flightsql.OptionSchema: "sales"})
		if err != nil {
			t.Fatal(err)
		}
		res, err := sc.SetSessionOptions(ctx, &arrowflight.SetSessionOptionsRequest{SessionOptions: opts})
		if err != nil || len(res.GetErrors()) > 0 {
			t.Fatalf("set session options: %v %v", res, err)
		}
		got := fetch(t, ctx, sc)(sc.Execute(ctx, "SELECT count(*) FROM extra"))
		if want := [][]string{{"3"}}; !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("count of extra in the session: %v", got)
		}
		cur, err := sc.GetSessionOptions(ctx, &arrowflight.GetSessionOptionsRequest{})
		if err != nil || cur.GetSessionOptions()[flightsql.OptionCatalog].GetStringValue() != "tester.setup" {
			t.Fatalf("session options %v %v", cur, err)
		}
		// A ref that does not exist fails, and leaves the session as it was.
		bad, _ := arrowflight.NewSessionOptionValues(map[string]any{flightsql.OptionCatalog: "tester.nosuch"})
		_, err = sc.SetSessionOptions(ctx, &arrowflight.SetSessionOptionsRequest{SessionOptions: bad})
		wantStatus(t, "unknown ref", err, codes.NotFound, "tester.nosuch")
		unknown, _ := arrowflight.NewSessionOptionValues(map[string]any{"colour": "red"})
		res, err = sc.SetSessionOptions(ctx, &arrowflight.SetSessionOptionsRequest{SessionOptions: unknown})
		if err != nil || res.GetErrors()["colour"] == nil {
			t.Fatalf("unknown option: %v %v", res, err)
		}
		got = fetch(t, ctx, sc)(sc.Execute(ctx, "SELECT count(*) FROM extra"))
		if want := [][]string{{"3"}}; !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("after the refused options: %v", got)
		}
		// Another connection without the cookie is at main.
		_, err = c.Execute(ctx, "SELECT count(*) FROM extra")
		wantStatus(t, "extra at main", err, codes.NotFound, "extra")
	})
	t.Run("hostile parameters", func(t *testing.T) {
		// Parameters whose schema message says it has 335M fields: arrow-go
		// would allocate 29 GiB reading it, and the server would die.
		stmt, err := c.Prepare(ctx, "SELECT ? AS x")
		if err != nil {
			t.Fatal(err)
		}
		defer stmt.Close(ctx)
		cmd, err := anypb.New(&flightgen.CommandPreparedStatementQuery{PreparedStatementHandle: stmt.Handle()})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := proto.Marshal(cmd)
		stream, err := c.Client.DoPut(ctx)
		if err != nil {
			t.Fatal(err)
		}
		stream.Send(&arrowflight.FlightData{FlightDescriptor: &arrowflight.FlightDescriptor{Type: arrowflight.DescriptorCMD, Cmd: body},
			DataHeader: ipctest.HugeSchema})
		stream.CloseSend()
		_, err = stream.Recv()
		wantStatus(t, "hostile parameters", err, codes.InvalidArgument, "does not fit")
		if got := fetch(t, ctx, c)(c.Execute(ctx, "SELECT 1")); len(got) != 1 {
			t.Fatalf("the server after hostile parameters: %v", got)
		}
	})
	t.Run("prepared statement with a parameter", func(t *testing.T) {
		hctx := metadata.AppendToOutgoingContext(ctx, flightsql.HeaderRef, "tester.setup")
		stmt, err := c.Prepare(hctx, "SELECT name FROM sales.extra WHERE id >= ? AND name <> '?' ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		defer stmt.Close(ctx)
		b := array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema([]arrow.Field{{Name: "p", Type: arrow.PrimitiveTypes.Int64}}, nil))
		defer b.Release()
		b.Field(0).(*array.Int64Builder).Append(2)
		params := b.NewRecordBatch()
		defer params.Release()
		stmt.SetParameters(params)
		got := fetch(t, ctx, c)(stmt.Execute(ctx))
		if want := [][]string{{"b"}, {"c"}}; !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("prepared: %v", got)
		}
		if err := stmt.Close(ctx); err != nil {
			t.Fatal(err)
		}
		gone, err := c.LoadPreparedStatementFromResult(&fsql.CreatePreparedStatementResult{PreparedStatementHandle: stmt.Handle()})
		if err != nil {
			t.Fatal(err)
		}
		_, err = gone.Execute(ctx)
		wantStatus(t, "closed statement", err, codes.NotFound, "prepared statement")
		// Planned when prepared: an unknown table fails here.
		_, err = c.Prepare(ctx, "SELECT * FROM sales.nosuch")
		wantStatus(t, "unknown table", err, codes.NotFound, "nosuch")
	})
	t.Run("read-only", func(t *testing.T) {
		_, err := c.ExecuteUpdate(ctx, "INSERT INTO sales.extra VALUES (4, 'd')")
		wantStatus(t, "update", err, codes.InvalidArgument, "read-only")
		_, err = c.Execute(ctx, "DELETE FROM sales.transactions")
		wantStatus(t, "delete as a query", err, codes.InvalidArgument, "SELECT")
		_, err = c.BeginTransaction(ctx)
		wantStatus(t, "transaction", err, codes.Unimplemented, "transactions")
		b := array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil))
		b.Field(0).(*array.Int64Builder).Append(1)
		rec := b.NewRecordBatch()
		b.Release()
		rr, _ := array.NewRecordReader(rec.Schema(), []arrow.RecordBatch{rec})
		rec.Release()
		_, err = c.ExecuteIngest(ctx, rr, &fsql.ExecuteIngestOpts{Table: "extra", TableDefinitionOptions: &fsql.TableDefinitionOptions{}})
		rr.Release()
		wantStatus(t, "ingest", err, codes.InvalidArgument, "read-only")
		_, err = c.ExecuteSubstrait(ctx, fsql.SubstraitPlan{Plan: []byte{1}})
		wantStatus(t, "substrait", err, codes.Unimplemented, "Substrait")
	})
	t.Run("database/sql driver", func(t *testing.T) {
		db, err := sql.Open("flightsql", "flightsql://"+p.hostPort()+"?"+flightsql.HeaderRef+"=tester.setup")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int64
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM sales.extra").Scan(&n); err != nil || n != 3 {
			t.Fatalf("count: %d %v", n, err)
		}
		var name string
		if err := db.QueryRowContext(ctx, "SELECT name FROM sales.extra WHERE id = ?", 2).Scan(&name); err != nil || name != "b" {
			t.Fatalf("with a parameter: %q %v", name, err)
		}
		// The driver prepares the statement: the query path refuses it.
		if _, err := db.ExecContext(ctx, "DELETE FROM sales.extra"); err == nil || !strings.Contains(err.Error(), "only SELECT") {
			t.Fatalf("exec: %v", err)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		// /metrics counts Flight SQL calls as it counts the server's own:
		// by method, failures by class, statements' streams as queries.
		const infos, gets = `lakehouse_requests_total{method="sql.GetFlightInfo"}`, `lakehouse_requests_total{method="sql.DoGet"}`
		// A client has all its rows before the server's call returns:
		// the driver's query above may still be counted, and these
		// calls may not be yet.
		waitQueriesDone := func() {
			for deadline := time.Now().Add(10 * time.Second); metricValue(t, p, "lakehouse_queries_running") != 0; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("lakehouse_queries_running stays above 0")
				}
			}
		}
		waitQueriesDone()
		queries0, infos0, gets0 := queriesServed(t, p), metricValue(t, p, infos), metricValue(t, p, gets)
		fetch(t, ctx, c)(c.Execute(ctx, query))
		fetch(t, ctx, c)(c.GetCatalogs(ctx)) // a DoGet, not a query
		waitQueriesDone()
		counted := func() (int, int, int) {
			return queriesServed(t, p) - queries0, metricValue(t, p, infos) - infos0, metricValue(t, p, gets) - gets0
		}
		q, i, g := counted()
		for deadline := time.Now().Add(10 * time.Second); g < 2 && time.Now().Before(deadline); q, i, g = counted() {
			time.Sleep(10 * time.Millisecond) // the listing's DoGet
		}
		if q != 1 || i != 2 || g != 2 {
			t.Errorf("a statement and a catalog listing counted %d queries, %d GetFlightInfo, %d DoGet; want 1, 2, 2", q, i, g)
		}
		// Calls and failures of the subtests above.
		for _, name := range []string{
			`lakehouse_requests_total{method="sql.CreatePreparedStatement"}`,
			`lakehouse_requests_total{method="sql.SetSessionOptions"}`,
			`lakehouse_requests_total{method="sql.DoPut"}`,
			`lakehouse_request_errors_total{method="sql.GetFlightInfo",class="not_found"}`,
			`lakehouse_request_errors_total{method="sql.DoPut",class="invalid_argument"}`,
			`lakehouse_request_errors_total{method="sql.BeginTransaction",class="invalid_argument"}`,
		} {
			if n := metricValue(t, p, name); n == 0 {
				t.Errorf("%s is 0", name)
			}
		}
	})
	// The server's own protocol is untouched beside Flight SQL.
	if out, code := runCLI(t, p.dataDir, "--addr", p.hostPort(), "query", query); code != 0 {
		t.Fatalf("lakehouse query: exit %d\n%s", code, out)
	}
}

// TestFlightSQLNeedsKeys checks Flight SQL calls go through the server's
// API keys: none is refused, a reader's key reads.
func TestFlightSQLNeedsKeys(t *testing.T) {
	dataDir := setupServeData(t)
	if out, code := runCLI(t, dataDir, "auth", "init", "--user", "root"); code != 0 {
		t.Fatalf("auth init: %d\n%s", code, out)
	}
	out, code := runCLI(t, dataDir, "-O", "json", "auth", "key", "create", "--user", "bob", "--role", "reader")
	if code != 0 {
		t.Fatalf("key create: %d\n%s", code, out)
	}
	var key struct {
		Key string `json:"key"`
	}
	if err := json.Unmarshal([]byte(out), &key); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, dataDir, "127.0.0.1:0")
	defer p.stop(time.Minute)
	ctx := context.Background()
	c := sqlClient(t, p.Addr)
	info, err := c.GetCatalogs(ctx)
	_, err = read(ctx, c, info, err)
	wantStatus(t, "no key", err, codes.Unauthenticated, "API key")
	_, err = c.Execute(ctx, "SELECT 1")
	wantStatus(t, "no key", err, codes.Unauthenticated, "API key")
	kctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key.Key)
	got := fetch(t, kctx, c)(c.Execute(kctx, "SELECT count(*) FROM sales.transactions"))
	if want := [][]string{{"400"}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("count with bob's key: %v", got)
	}
	db, err := sql.Open("flightsql", "flightsql://"+p.hostPort()+"?token="+key.Key)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM sales.transactions").Scan(&n); err != nil || n != 400 {
		t.Fatalf("database/sql with a token: %d %v", n, err)
	}
}
