package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/lakehouse-dev/lakehouse/internal/arrowipc/ipctest"
)

// TestBadImportsLeaveStateUnchanged imports each kind of bad file through
// the command line and checks the error names the file, the exit code is
// non-zero, and no branch, table or warehouse file changed.
func TestBadImportsLeaveStateUnchanged(t *testing.T) {
	dataDir, src := t.TempDir(), t.TempDir()
	env := map[string]string{envDataDir: dataDir, envUser: "tester", "HOME": dataDir}
	lh := func(args ...string) (string, string, int) {
		var stdout, stderr bytes.Buffer
		e := &Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string { return env[k] }}
		code := run(context.Background(), append([]string{"lakehouse"}, args...), e)
		return stdout.String(), stderr.String(), code
	}
	write := func(name, content string) string {
		p := filepath.Join(src, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.csv", "id,usd\n1,2.5\n2,3.5\n")
	for _, args := range [][]string{
		{"checkout", "-b", "tester.dev"},
		{"namespace", "create", "sales"},
		{"table", "import", "sales.t", "--from", good},
	} {
		if _, stderr, code := lh(args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
	}
	// A huge CSV whose last row is broken: everything before it is valid.
	var huge strings.Builder
	huge.WriteString("id,usd\n")
	for huge.Len() < 20<<20 {
		huge.WriteString("123456789,12345.6789\n")
	}
	huge.WriteString("1,2,3\n")

	cases := []struct{ name, content, want string }{
		{"unbalanced.csv", "id,usd\n1,\"2.5\n", "quote"},
		{"empty.csv", "", "is empty"},
		{"header-only.csv", "id,usd\n", "no data rows"},
		{"ragged.csv", "id,usd\n1,2.5\n3\n", "fields but the header has 2"},
		{"wrong-type.csv", "id,usd\n1,abc\n", `column "usd"`},
		{"bad-magic.parquet", "PAR0 not really parquet PAR0", "not a Parquet file"},
		{"huge.csv", huge.String(), "line"},
		// arrow-go reads the stored schema first and would allocate 29 GiB
		// for the fields it claims: the process would die.
		{"schema-bomb.parquet", schemaBombParquet(t), "ARROW:schema"},
	}
	state := func() string {
		t.Helper()
		var b strings.Builder
		for _, args := range [][]string{{"branch", "ls", "-O", "json"}, {"table", "get", "sales.t", "-O", "json"}} {
			out, stderr, code := lh(args...)
			if code != 0 {
				t.Fatalf("%v: %s", args, stderr)
			}
			b.WriteString(out)
		}
		filepath.WalkDir(filepath.Join(dataDir, "warehouse"), func(p string, d os.DirEntry, err error) error {
			b.WriteString(p + "\n")
			return nil
		})
		return b.String()
	}
	before := state()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := write(tc.name, tc.content)
			_, stderr, code := lh("table", "import", "sales.t", "--from", p)
			if code == 0 {
				t.Fatalf("import of %s succeeded", tc.name)
			}
			if !strings.HasPrefix(stderr, "error: ") || !strings.Contains(stderr, tc.name) || !strings.Contains(stderr, tc.want) {
				t.Fatalf("stderr = %q, want an error naming %s and containing %q", stderr, tc.name, tc.want)
			}
			if strings.Count(stderr, "\n") > 3 {
				t.Fatalf("error is not short: %q", stderr)
			}
			if after := state(); after != before {
				t.Fatalf("state changed after a failed import:\nbefore %s\nafter %s", before, after)
			}
		})
	}
}

// schemaBombParquet is a valid Parquet file but for its stored Arrow
// schema (ARROW:schema), a schema message claiming 335M fields.
func schemaBombParquet(t *testing.T) string {
	t.Helper()
	b := array.NewInt64Builder(memory.DefaultAllocator)
	b.Append(1)
	col := b.NewArray()
	b.Release()
	schema := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil)
	rec := array.NewRecordBatch(schema, []arrow.Array{col}, 1)
	col.Release()
	defer rec.Release()
	var buf bytes.Buffer
	w, err := pqarrow.NewFileWriter(schema, &buf, parquet.NewWriterProperties(), pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	stream := binary.LittleEndian.AppendUint32([]byte{0xff, 0xff, 0xff, 0xff}, uint32(len(ipctest.HugeSchema)))
	stream = append(stream, ipctest.HugeSchema...)
	if err := w.AppendKeyValueMetadata("ARROW:schema", base64.StdEncoding.EncodeToString(stream)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}
