package catalog_test

import (
	"strings"
	"testing"

	"github.com/lakehouse-dev/lakehouse/catalog/warehouse"
	"github.com/lakehouse-dev/lakehouse/internal/miniotest"
	"github.com/lakehouse-dev/lakehouse/internal/warehousetest"
)

// localOnly lists the tests on real Iceberg tables that keep a local
// warehouse in the S3 mode (see testWarehouse), and why. They run their
// local version there.
var localOnly = map[string]string{
	"TestCrashSafety": "SIGKILLs a child mid-write and checks the bbolt file and local files it left",
	// The gc tests' fixture (gcEnv, gc_test.go) writes orphans, sets
	// modification times and removes files through the local filesystem.
	// GC on S3 is TestGCEachWarehouse's and cli's TestS3WarehouseEndToEnd's.
	"TestGCOrphansAndGrace":                       "gcEnv: local files, os.Chtimes",
	"TestGCRemovesEmptiedFolders":                 "removal of local folders GC emptied (S3 has none)",
	"TestGCSharedFilesAfterRenameAndRevert":       "gcEnv: local files, os.Chtimes",
	"TestGCTableDroppedOnOneBranchAliveOnAnother": "gcEnv: local files, os.Chtimes",
	"TestGCInFlightImport":                        "gcEnv: local files, os.Chtimes",
	"TestGCInFlightImportKeepsItsBase":            "gcEnv: local files, os.Chtimes",
	"TestGCDeadWriterHoldsNothing":                "gcEnv: local files, os.Chtimes",
	"TestGCTimeTravelWithinRetention":             "gcEnv: local files, os.Chtimes",
	"TestGCRunningHold":                           "gcEnv: local files, os.Chtimes",
	"TestGCMergeOfDeletedSource":                  "gcEnv: local files, os.Chtimes",
	"TestGCMissingFiles":                          "gcEnv: local files, os.Chtimes",
	"TestGCDamagedCatalogDeletesNothing":          "gcEnv: local files, os.Chtimes",
	"TestGCModel":                                 "gcEnv: local files, os.Chtimes",
}

// TestLocalOnlyNamesTests keeps localOnly true: each entry names a test
// of the package, with a reason.
func TestLocalOnlyNamesTests(t *testing.T) { warehousetest.CheckLocalOnly(t, localOnly) }

// testWarehouse returns the warehouse of t's catalog: nil (a local one in
// the catalog's directory), or in the S3 mode (warehousetest.S3,
// LAKEHOUSE_TEST_WAREHOUSE=s3) a prefix on a MinIO started for t, unless
// t is listed in localOnly. eachWarehouse's tests run on both in every
// mode.
func testWarehouse(t testing.TB) warehouse.Storage {
	t.Helper()
	if !warehousetest.S3 {
		return nil
	}
	top, _, _ := strings.Cut(t.Name(), "/")
	if why, ok := localOnly[top]; ok {
		t.Logf("local warehouse (local-only: %s)", why)
		return nil
	}
	return warehousetest.OnS3(t, packageMinIO)
}

// packageMinIO serves the S3 mode's warehouses, a prefix of it for each
// test: one MinIO for the test binary, started by TestMain, instead of
// one a test.
var packageMinIO *miniotest.Server

func TestMain(m *testing.M) { warehousetest.Main(m, &packageMinIO) }
