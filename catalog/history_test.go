package catalog_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/warehousetest"
)

// rawMetadata is what these tests read of an Iceberg metadata file, as
// an outside engine reads it.
type rawMetadata struct {
	CurrentSnapshotID int64 `json:"current-snapshot-id"`
	Refs              map[string]struct {
		SnapshotID int64  `json:"snapshot-id"`
		Type       string `json:"type"`
	} `json:"refs"`
	Snapshots []struct {
		SnapshotID int64             `json:"snapshot-id"`
		ParentID   int64             `json:"parent-snapshot-id"`
		Summary    map[string]string `json:"summary"`
	} `json:"snapshots"`
	SnapshotLog []struct {
		SnapshotID int64 `json:"snapshot-id"`
	} `json:"snapshot-log"`
	MetadataLog []struct {
		File string `json:"metadata-file"`
	} `json:"metadata-log"`
}

func readRawMetadata(t *testing.T, loc string) rawMetadata {
	t.Helper()
	var md rawMetadata
	if err := json.Unmarshal(warehousetest.Read(t, loc), &md); err != nil {
		t.Fatalf("%s: %v", loc, err)
	}
	return md
}

func (md rawMetadata) has(id int64) bool {
	for _, s := range md.Snapshots {
		if s.SnapshotID == id {
			return true
		}
	}
	return false
}

// threeWayMerge builds a table whose history on main holds a three-way
// merge: alice.a creates sales.tx and merges it into main; bob.x and bob.y
// branch from main; bob.x appends and merges (a fast-forward); bob.y
// appends twice and merges, which combines the two sides into a new
// snapshot on main.
// It returns the catalog (on the test's warehouse) and the table.
func threeWayMerge(t *testing.T) (*catalog.Local, catalog.TableIdent) {
	t.Helper()
	dir := t.TempDir()
	svc, err := openService(dir, testWarehouse(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	ctx := context.Background()
	tbl := catalog.TableIdent{Namespace: "sales", Name: "tx"}
	csv := func(name string, from int) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(fmt.Sprintf("id\n%d\n%d\n", from, from+1)), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	main := catalog.Ref{Name: "main"}
	must(svc.CreateBranch(ctx, "alice.a", main))
	must(svc.CreateNamespace(ctx, "alice.a", "sales", catalog.CommitOptions{}))
	must(svc.ImportTable(ctx, catalog.ImportRequest{Branch: "alice.a", Table: tbl, Sources: []string{csv("f1.csv", 0)}}))
	must(svc.Merge(ctx, catalog.MergeRequest{Source: catalog.Ref{Name: "alice.a"}, Into: "main"}))
	must(svc.CreateBranch(ctx, "bob.x", main))
	must(svc.CreateBranch(ctx, "bob.y", main))
	must(svc.ImportTable(ctx, catalog.ImportRequest{Branch: "bob.x", Table: tbl, Sources: []string{csv("f2.csv", 10)}}))
	must(svc.Merge(ctx, catalog.MergeRequest{Source: catalog.Ref{Name: "bob.x"}, Into: "main"}))
	must(svc.ImportTable(ctx, catalog.ImportRequest{Branch: "bob.y", Table: tbl, Sources: []string{csv("f3.csv", 20)}}))
	must(svc.ImportTable(ctx, catalog.ImportRequest{Branch: "bob.y", Table: tbl, Sources: []string{csv("f4.csv", 30)}}))
	res, err := svc.Merge(ctx, catalog.MergeRequest{Source: catalog.Ref{Name: "bob.y"}, Into: "main"})
	if err != nil || res.Outcome != "merge" || len(res.Combined) != 1 {
		t.Fatalf("merging bob.y: %+v, %v", res, err)
	}
	return svc, tbl
}

// TableHistory lists only snapshot ids that the table's metadata at the
// ref holds, so an outside engine reading that metadata file can travel
// to each; the merge commit says which snapshot of the merged branch its
// snapshot replaced, and every entry names the metadata file of its own
// state.
func TestTableHistorySnapshotsAtRef(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, tbl := threeWayMerge(t)

	mainEntry, _, err := svc.TableEntry(ctx, catalog.Ref{Name: "main"}, tbl)
	if err != nil {
		t.Fatal(err)
	}
	yEntry, _, err := svc.TableEntry(ctx, catalog.Ref{Name: "bob.y"}, tbl)
	if err != nil {
		t.Fatal(err)
	}
	md := readRawMetadata(t, mainEntry.MetadataLocation)
	hist, err := svc.TableHistory(ctx, catalog.Ref{Name: "main"}, tbl, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 5 {
		t.Fatalf("history of main has %d entries, want 5: %+v", len(hist), hist)
	}
	withSnapshot := 0
	for _, h := range hist {
		if h.MetadataLocation == "" {
			t.Errorf("commit %s: no metadata location", h.Commit.ID.Short())
		}
		if h.SnapshotID == 0 {
			continue
		}
		withSnapshot++
		if !md.has(h.SnapshotID) {
			t.Errorf("commit %s (%s) lists snapshot %d, which main's metadata %s does not hold",
				h.Commit.ID.Short(), h.Commit.Message, h.SnapshotID, mainEntry.MetadataLocation)
		}
	}
	// Main's lineage: created, bob.x's append, the merge; bob.y's two
	// snapshots are only in bob.y's metadata.
	if withSnapshot != 3 {
		t.Errorf("%d entries with a snapshot, want 3: %+v", withSnapshot, hist)
	}
	merge := hist[0]
	if len(merge.Commit.Parents) != 2 || merge.SnapshotID != mainEntry.SnapshotID || merge.ReplacedSnapshotID != yEntry.SnapshotID {
		t.Errorf("merge entry %+v (snapshot %d, replaced %d), want snapshot %d replacing bob.y's %d",
			merge.Commit, merge.SnapshotID, merge.ReplacedSnapshotID, mainEntry.SnapshotID, yEntry.SnapshotID)
	}
	if merge.MetadataLocation != mainEntry.MetadataLocation {
		t.Errorf("merge entry names %s, want %s", merge.MetadataLocation, mainEntry.MetadataLocation)
	}
	// bob.y's history lists its own snapshots: they are in its metadata.
	yHist, err := svc.TableHistory(ctx, catalog.Ref{Name: "bob.y"}, tbl, 0)
	if err != nil {
		t.Fatal(err)
	}
	ymd := readRawMetadata(t, yEntry.MetadataLocation)
	for _, h := range yHist {
		if h.SnapshotID == 0 || !ymd.has(h.SnapshotID) || h.ReplacedSnapshotID != 0 {
			t.Errorf("bob.y history entry %s: snapshot %d (replaced %d)", h.Commit.Message, h.SnapshotID, h.ReplacedSnapshotID)
		}
	}

	// A revert takes the table back to a metadata file without the later
	// snapshots: history at the branch no longer lists them.
	if _, err := svc.RevertTable(ctx, "bob.y", tbl, catalog.Ref{Name: "bob.x"}, catalog.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	xEntry, _, err := svc.TableEntry(ctx, catalog.Ref{Name: "bob.y"}, tbl)
	if err != nil {
		t.Fatal(err)
	}
	xmd := readRawMetadata(t, xEntry.MetadataLocation)
	yHist, err = svc.TableHistory(ctx, catalog.Ref{Name: "bob.y"}, tbl, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range yHist {
		if h.SnapshotID != 0 && !xmd.has(h.SnapshotID) {
			t.Errorf("after the revert, %s lists snapshot %d, not in bob.y's metadata", h.Commit.Message, h.SnapshotID)
		}
	}
}

// Every metadata file is one ref's view of the table: its refs hold main
// only, at the file's own current snapshot, its logs list its own lineage,
// and no two states (of any branch) share a file name.
func TestMetadataPerRef(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, tbl := threeWayMerge(t)
	name := regexp.MustCompile(`/metadata/\d{5}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.metadata\.json$`)
	seen := map[string]bool{}
	for _, ref := range []string{"main", "alice.a", "bob.x", "bob.y"} {
		hist, err := svc.TableHistory(ctx, catalog.Ref{Name: ref}, tbl, 0)
		if err != nil {
			t.Fatal(err)
		}
		e, _, err := svc.TableEntry(ctx, catalog.Ref{Name: ref}, tbl)
		if err != nil {
			t.Fatal(err)
		}
		md := readRawMetadata(t, e.MetadataLocation)
		if r, ok := md.Refs["main"]; len(md.Refs) != 1 || !ok || r.SnapshotID != e.SnapshotID || r.Type != "branch" ||
			md.CurrentSnapshotID != e.SnapshotID {
			t.Errorf("%s: refs %+v, current %d; want only main at %d", ref, md.Refs, md.CurrentSnapshotID, e.SnapshotID)
		}
		for _, l := range md.SnapshotLog {
			if !md.has(l.SnapshotID) {
				t.Errorf("%s: snapshot-log lists %d, not in snapshots", ref, l.SnapshotID)
			}
		}
		if n := len(md.SnapshotLog); n == 0 || md.SnapshotLog[n-1].SnapshotID != e.SnapshotID {
			t.Errorf("%s: snapshot-log %+v does not end at %d", ref, md.SnapshotLog, e.SnapshotID)
		}
		// The metadata log is the chain of files this one was written over.
		for _, l := range md.MetadataLog {
			if !seen[l.File] && !inHistory(hist, l.File) {
				t.Errorf("%s: metadata-log lists %s, not a state in its history", ref, l.File)
			}
		}
		for _, h := range hist {
			if !name.MatchString(h.MetadataLocation) {
				t.Errorf("%s: metadata file %s is not named <version>-<uuid>.metadata.json", ref, h.MetadataLocation)
			}
			seen[h.MetadataLocation] = true
		}
	}
	// Five states (alice.a's, bob.x's, bob.y's two and the merge's; main's
	// fast-forwards share their files), five files.
	if len(seen) != 5 {
		t.Errorf("%d distinct metadata files, want 5: %v", len(seen), seen)
	}
}

func inHistory(hist []catalog.TableChange, loc string) bool {
	for _, h := range hist {
		if h.MetadataLocation == loc {
			return true
		}
	}
	return false
}
