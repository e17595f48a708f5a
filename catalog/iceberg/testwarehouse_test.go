package iceberg

import (
	"context"
	"errors"
	iofs "io/fs"
	"os"
	"strings"
	"testing"

	iceio "github.com/apache/iceberg-go/io"
	"github.com/lakehouse-dev/lakehouse/catalog/warehouse"
	"github.com/lakehouse-dev/lakehouse/internal/miniotest"
	"github.com/lakehouse-dev/lakehouse/internal/warehousetest"
)

// localOnly lists the tests that build a Format over a local warehouse
// in the S3 mode too, and why. (Tests of S3 itself, s3_test.go and
// s3prune_test.go, run on MinIO in every mode.)
var localOnly = map[string]string{
	"FuzzCSVImport":       "fuzzes the CSV reader; where the table lands does not matter",
	"FuzzIPCImport":       "fuzzes the Arrow IPC reader; where the table lands does not matter",
	"TestImportS3Sources": "its sources are on S3; a local warehouse shows they are read from there",
	"TestDirObjects":      "DirObjects lists a local directory (symlinks, folders)",
}

// TestLocalOnlyNamesTests keeps localOnly true: each entry names a test
// of the package, with a reason.
func TestLocalOnlyNamesTests(t *testing.T) { warehousetest.CheckLocalOnly(t, localOnly) }

// packageMinIO serves the S3 mode's warehouses (warehousetest.S3,
// LAKEHOUSE_TEST_WAREHOUSE=s3): the tests that build their Format with
// newTestFormat run on a prefix of it each.
var packageMinIO *miniotest.Server

func TestMain(m *testing.M) { warehousetest.Main(m, &packageMinIO) }

// testStorage is t's warehouse in the S3 mode: a prefix of the package's
// MinIO that no other test uses.
func testStorage(t *testing.T) warehouse.Storage { return warehousetest.OnS3(t, packageMinIO) }

// testFS is a file system that reads loc, a location table metadata
// records: iceberg-go's own for a local path, else the test warehouse's
// that holds it.
func testFS(t *testing.T, loc string) iceio.IO {
	t.Helper()
	if !strings.HasPrefix(loc, "s3://") {
		fs, err := iceio.LoadFSFunc(nil, loc)(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return fs
	}
	st, ok := warehousetest.Holding(loc)
	if !ok {
		t.Fatalf("%s is in no test warehouse", loc)
	}
	return newWriteOnceFS(context.Background(), st)
}

// storageKey is the key of f's object at loc.
func storageKey(t *testing.T, f *Format, loc string) string {
	t.Helper()
	key, ok := f.Storage().Key(loc)
	if !ok {
		t.Fatalf("%s is outside the warehouse %s", loc, f.Storage().Root())
	}
	return key
}

// locDir is the directory of a location (filepath.Dir would turn s3://
// into s3:/).
func locDir(loc string) string { return loc[:strings.LastIndex(loc, "/")] }

// listDir lists the warehouse directory at loc (a location table metadata
// records): its entries on a local warehouse (temporary files too), the
// first path element of each key under it on S3. A missing directory is
// empty.
func listDir(t *testing.T, f *Format, loc string) []string {
	t.Helper()
	var out []string
	if !strings.HasPrefix(loc, "s3://") {
		ents, err := os.ReadDir(loc)
		if err != nil && !errors.Is(err, iofs.ErrNotExist) {
			t.Fatal(err)
		}
		for _, e := range ents {
			out = append(out, e.Name())
		}
		return out
	}
	prefix := storageKey(t, f, loc) + "/"
	err := f.Storage().List(context.Background(), prefix, func(o warehouse.ObjectInfo) error {
		name, _, _ := strings.Cut(strings.TrimPrefix(o.Key, prefix), "/")
		if len(out) == 0 || out[len(out)-1] != name {
			out = append(out, name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// readLocation reads the object at loc (see warehousetest.Read).
func readLocation(t *testing.T, loc string) []byte { return warehousetest.Read(t, loc) }
