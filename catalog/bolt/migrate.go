package bolt

import (
	"strconv"

	bolt "go.etcd.io/bbolt"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Bucket and key names of the layout drawn in the package doc.
var (
	bucketMeta     = []byte("meta")
	bucketBranches = []byte("branches")
	bucketTags     = []byte("tags")
	bucketCommits  = []byte("commits")
	bucketTrees    = []byte("trees")
	bucketRecords  = []byte("records")

	keyVersion = []byte("version")
)

// migration moves the layout from version-1 to version, where version is its
// position in migrations plus one.
type migration struct {
	name  string
	apply func(tx *bolt.Tx) error
}

// migrations are applied in order; append only, never edit or reorder.
var migrations = []migration{
	{name: "initial layout", apply: createLayoutV1},
}

// currentVersion is the format version this binary writes.
var currentVersion = len(migrations)

func createLayoutV1(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketMeta, bucketBranches, bucketTags, bucketCommits, bucketTrees, bucketRecords} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return nil
}

// readVersion returns the format version of the file, 0 for an empty file.
func readVersion(path string, tx *bolt.Tx) (int, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		// An empty file is version 0. A bbolt file with other buckets
		// belongs to someone else.
		if k, _ := tx.Cursor().First(); k != nil {
			return 0, damagedError(path, "it is a bbolt file but not a lakehouse catalog: it has a %q bucket and no %q bucket", k, bucketMeta)
		}
		return 0, nil
	}
	raw := meta.Get(keyVersion)
	if err := tooLong(tx, raw); err != nil {
		return 0, err
	}
	if len(raw) > 20 {
		raw = raw[:20]
	}
	v, err := strconv.Atoi(string(raw))
	if err != nil || v < 1 {
		return 0, damagedError(path, "its format version %q in meta/version is not a positive number", raw)
	}
	return v, nil
}

// checkLayout checks that every top-level bucket of the layout is there.
func checkLayout(path string, tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketMeta, bucketBranches, bucketTags, bucketCommits, bucketTrees, bucketRecords} {
		if tx.Bucket(name) == nil {
			return damagedError(path, "its %q bucket is missing", name)
		}
	}
	return nil
}

func tooNewError(path string, v int) error {
	return errdefs.WithHint(errdefs.ErrFailedPrecondition,
		"upgrade lakehouse to open it",
		"%s has catalog format version %d, but this lakehouse supports versions up to %d", path, v, currentVersion)
}

// migrate brings the layout to currentVersion. It runs in the Update that
// Open starts, so a failed migration leaves the file as it was.
func migrate(path string, tx *bolt.Tx) error {
	v, err := readVersion(path, tx)
	if err != nil {
		return err
	}
	if v > currentVersion {
		return tooNewError(path, v)
	}
	if v == currentVersion {
		return nil
	}
	for i := v; i < currentVersion; i++ {
		if err := migrations[i].apply(tx); err != nil {
			return errdefs.New(errdefs.ErrInternal, "%s: migrate catalog format to version %d (%s): %v", path, i+1, migrations[i].name, err)
		}
	}
	return tx.Bucket(bucketMeta).Put(keyVersion, []byte(strconv.Itoa(currentVersion)))
}

// checkVersion is migrate for a read-only Open: it cannot write, so the file
// must already be at currentVersion.
func checkVersion(path string, tx *bolt.Tx) error {
	v, err := readVersion(path, tx)
	switch {
	case err != nil:
		return err
	case v > currentVersion:
		return tooNewError(path, v)
	case v < currentVersion:
		return errdefs.WithHint(errdefs.ErrFailedPrecondition,
			"open it read-write once to migrate it",
			"%s has catalog format version %d, which this lakehouse must migrate to %d before it can read it", path, v, currentVersion)
	}
	return nil
}
