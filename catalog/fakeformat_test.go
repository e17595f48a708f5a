package catalog_test

import (
	"context"
	"errors"
	"strings"

	"github.com/lakehouse-dev/lakehouse/catalog"
)

// fakeFormat is a TableFormat whose table states are strings: the list of
// operations since creation, "a<n>" for an append and "r<n>" for a
// replace, joined by commas. It lets the versioning rules be tested at
// thousands of operations a second, apart from Iceberg.
type fakeFormat struct{}

var _ catalog.TableFormat = fakeFormat{}

func (fakeFormat) Import(context.Context, catalog.ImportSpec) (*catalog.ImportOutcome, error) {
	panic("fakeFormat: Import is not used by these tests")
}

func (fakeFormat) Describe(_ context.Context, id catalog.TableIdent, e catalog.TableEntry) (*catalog.TableInfo, error) {
	return &catalog.TableInfo{Ident: id, Metadata: e.MetadataLocation}, nil
}

func (fakeFormat) SchemaDiff(context.Context, catalog.TableEntry, catalog.TableEntry) ([]catalog.SchemaChange, error) {
	return nil, nil
}

// MergeAppends combines two op lists that both extend base by appends only.
func (fakeFormat) MergeAppends(_ context.Context, _ catalog.TableIdent, base, ours, theirs catalog.TableEntry) (catalog.TableEntry, bool, error) {
	merged, ok := mergeAppendOps(base.MetadataLocation, ours.MetadataLocation, theirs.MetadataLocation)
	return catalog.TableEntry{MetadataLocation: merged}, ok, nil
}

// mergeAppendOps is the fake's merge rule, shared with the model.
func mergeAppendOps(base, ours, theirs string) (string, bool) {
	extra := func(s string) (string, bool) {
		if !strings.HasPrefix(s, base+",") {
			return "", false
		}
		rest := s[len(base)+1:]
		for _, op := range strings.Split(rest, ",") {
			if !strings.HasPrefix(op, "a") {
				return "", false
			}
		}
		return rest, true
	}
	if ours == base {
		return theirs, true
	}
	if theirs == base {
		return ours, true
	}
	_, ok1 := extra(ours)
	x2, ok2 := extra(theirs)
	if !ok1 || !ok2 {
		return "", false
	}
	return ours + "," + x2, true
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// Snapshots lists the state's snapshot, if any: the fake keeps no older ones.
func (fakeFormat) Snapshots(_ context.Context, _ catalog.TableIdent, e catalog.TableEntry) ([]catalog.SnapshotInfo, error) {
	if e.SnapshotID == 0 {
		return nil, nil
	}
	return []catalog.SnapshotInfo{{ID: e.SnapshotID}}, nil
}
