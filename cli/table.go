package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/lakehouse-dev/lakehouse/catalog"
	urfave "github.com/urfave/cli/v2"
)

func (e *Env) tableCommand() *urfave.Command {
	return &urfave.Command{
		Name:  "table",
		Usage: "list, inspect, import, revert and remove tables",
		Description: "Table names are NS.TABLE, or TABLE in the profile's namespace\n" +
			"(`lakehouse config set namespace NS`).",
		Subcommands: []*urfave.Command{
			{
				Name: "ls", Usage: "list tables at a ref (every namespace unless -n)",
				Flags:  []urfave.Flag{refFlag(), &urfave.StringFlag{Name: "namespace", Aliases: []string{"n"}, Usage: "only this namespace"}},
				Action: e.tableList,
			},
			{
				Name: "get", Usage: "describe a table: schema, partitioning, snapshot, rows, files", ArgsUsage: "NAME",
				Flags:  []urfave.Flag{refFlag()},
				Action: e.tableGet,
			},
			{
				Name: "rm", Usage: "remove a table from a branch", ArgsUsage: "NAME",
				Flags:  []urfave.Flag{branchFlag()},
				Action: e.tableRemove,
			},
			{
				Name: "history", Usage: "commits that changed a table, newest first", ArgsUsage: "NAME",
				Flags:  []urfave.Flag{refFlag(), limitFlag("commits")},
				Action: e.tableHistory,
			},
			{
				Name: "revert", Usage: "set a table on a branch to its state at another ref", ArgsUsage: "NAME",
				Flags: []urfave.Flag{
					&urfave.StringFlag{Name: "from", Usage: "ref whose state of the table to restore (required)"},
					branchFlag(),
					messageFlag(),
				},
				Action: e.tableRevert,
			},
			e.importCommand(),
		},
	}
}

func messageFlag() urfave.Flag {
	return &urfave.StringFlag{Name: "message", Aliases: []string{"m"}, Usage: "commit message"}
}

// tableSummary is a table in listings.
type tableSummary struct {
	Table            string `json:"table"`
	Namespace        string `json:"namespace"`
	Name             string `json:"name"`
	SnapshotID       int64  `json:"snapshot_id"`
	MetadataLocation string `json:"metadata_location"`
}

func viewTables(ts []catalog.TableSummary) []tableSummary {
	out := make([]tableSummary, 0, len(ts))
	for _, t := range ts {
		id := catalog.TableIdent{Namespace: t.Namespace, Name: t.Name}
		out = append(out, tableSummary{Table: id.String(), Namespace: string(t.Namespace), Name: t.Name,
			SnapshotID: t.SnapshotID, MetadataLocation: t.Metadata})
	}
	return out
}

func (e *Env) tablesTable(ts []tableSummary) *table {
	t := e.newTable("TABLE", "SNAPSHOT")
	for _, s := range ts {
		t.row(s.Table, snapshotCell(s.SnapshotID))
	}
	return t
}

func snapshotCell(id int64) string {
	if id == 0 {
		return "-"
	}
	return fmt.Sprint(id)
}

func (e *Env) tableList(c *urfave.Context) error {
	if _, err := positional(c); err != nil {
		return err
	}
	ref, err := e.readRef(c.String("ref"))
	if err != nil {
		return err
	}
	var ns catalog.Namespace
	if s := c.String("namespace"); s != "" {
		if ns, err = catalog.ParseNamespace(s); err != nil {
			return err
		}
	}
	svc, err := e.Service(c.Context)
	if err != nil {
		return err
	}
	ts, err := svc.ListTables(c.Context, ref, ns)
	if err != nil {
		return err
	}
	views := viewTables(ts)
	return e.emit(views, func(w io.Writer) error { return e.tablesTable(views).write(w) })
}

// tableDetail is `table get` in JSON output.
type tableDetail struct {
	Table string `json:"table"`
	Ref   string `json:"ref"`
	*catalog.TableInfo
}

func (e *Env) tableGet(c *urfave.Context) error {
	args, err := positional(c, "NAME")
	if err != nil {
		return err
	}
	id, err := e.tableIdent(args[0], "")
	if err != nil {
		return err
	}
	ref, err := e.readRef(c.String("ref"))
	if err != nil {
		return err
	}
	svc, err := e.Service(c.Context)
	if err != nil {
		return err
	}
	info, err := svc.GetTable(c.Context, ref, id)
	if err != nil {
		return err
	}
	info.Schema = nonNil(info.Schema)
	info.PartitionSpec = nonNil(info.PartitionSpec)
	info.Files = nonNil(info.Files)
	v := tableDetail{Table: id.String(), Ref: ref.String(), TableInfo: info}
	return e.emit(v, func(w io.Writer) error {
		var f fields
		f.add("table", id.String())
		f.add("ref", fmt.Sprintf("%s (commit %s)", ref, info.Commit.Short()))
		f.add("rows", fmt.Sprint(info.RowCount))
		f.add("files", fmt.Sprintf("%d (%s)", info.FileCount, humanBytes(info.TotalBytes)))
		f.add("partitioned by", partitionCell(info.PartitionSpec))
		if s := info.Snapshot; s != nil {
			replaced := ""
			if s.ReplacedSnapshotID != 0 {
				replaced = fmt.Sprintf("; replaces %d of the merged branch", s.ReplacedSnapshotID)
			}
			f.add("snapshot", fmt.Sprintf("%d (%s, %s%s)", s.ID, orDash(s.Operation), formatTime(s.Time), replaced))
		} else {
			f.add("snapshot", "- (empty table)")
		}
		f.add("snapshots", fmt.Sprint(info.Snapshots))
		f.add("format", fmt.Sprintf("iceberg v%d", info.FormatVersion))
		f.add("location", info.Location)
		f.add("metadata", info.Metadata)
		if err := f.write(w); err != nil {
			return err
		}
		fmt.Fprintln(w)
		t := e.newTable("COLUMN", "TYPE", "REQUIRED")
		for _, col := range info.Schema {
			req := "no"
			if col.Required {
				req = "yes"
			}
			t.row(col.Name, col.Type, req)
		}
		if err := t.write(w); err != nil {
			return err
		}
		return writeFiles(e, w, info)
	})
}

// maxListedFiles bounds the data files `table get` lists on a terminal;
// -O json lists them all.
const maxListedFiles = 20

func writeFiles(e *Env, w io.Writer, info *catalog.TableInfo) error {
	if len(info.Files) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	type fileRow struct {
		path, part   string
		rows, nbytes int64
	}
	rows := make([]fileRow, len(info.Files))
	for i, df := range info.Files {
		var part []string
		for k, v := range df.Partition {
			part = append(part, k+"="+v)
		}
		sort.Strings(part)
		rows[i] = fileRow{strings.TrimPrefix(strings.TrimPrefix(df.Path, "file://"), info.Location+"/"),
			strings.Join(part, ","), df.Records, df.Bytes}
	}
	// File names hold random ids: order by partition, then size, so the
	// listing reads the same each time.
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.part != b.part {
			return a.part < b.part
		}
		if a.rows != b.rows {
			return a.rows > b.rows
		}
		if a.nbytes != b.nbytes {
			return a.nbytes > b.nbytes
		}
		return a.path < b.path
	})
	t := e.newTable("FILE", "ROWS", "SIZE", "PARTITION")
	for _, r := range rows[:min(len(rows), maxListedFiles)] {
		t.row(r.path, fmt.Sprint(r.rows), humanBytes(r.nbytes), orDash(r.part))
	}
	if err := t.write(w); err != nil {
		return err
	}
	if n := len(info.Files) - maxListedFiles; n > 0 {
		fmt.Fprintf(w, "… and %d more files (all of them with -O json)\n", n)
	}
	return nil
}

func partitionCell(spec []catalog.PartitionField) string {
	if len(spec) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(spec))
	for _, p := range spec {
		if p.Transform == "" || p.Transform == "identity" {
			parts = append(parts, p.SourceColumn)
		} else {
			parts = append(parts, fmt.Sprintf("%s(%s)", p.Transform, p.SourceColumn))
		}
	}
	return strings.Join(parts, ", ")
}

func (e *Env) tableRemove(c *urfave.Context) error {
	args, err := positional(c, "NAME")
	if err != nil {
		return err
	}
	id, err := e.tableIdent(args[0], "")
	if err != nil {
		return err
	}
	opts, err := e.commitOptions("")
	if err != nil {
		return err
	}
	svc, err := e.Service(c.Context)
	if err != nil {
		return err
	}
	branch, err := e.writeBranch(c.Context, c.String("branch"))
	if err != nil {
		return err
	}
	commit, err := svc.DeleteTable(c.Context, branch, id, opts)
	if err != nil {
		return err
	}
	v := writeView{Action: "removed", Table: id.String(), Branch: string(branch), Commit: viewCommit(commit)}
	return e.emit(v, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "removed table %s from %s (commit %s)\n", id, branch, shortID(commit))
		return err
	})
}

type tableChangeView struct {
	Change             string      `json:"change"`
	SnapshotID         int64       `json:"snapshot_id,omitempty"`
	ReplacedSnapshotID int64       `json:"replaced_snapshot_id,omitempty"`
	MetadataLocation   string      `json:"metadata_location,omitempty"`
	Commit             *commitView `json:"commit"`
}

// historySnapshotCell is a history entry's snapshot: "-" when the
// table's metadata at the ref does not hold it, and the snapshot of the
// merged branch a merge snapshot replaced.
func historySnapshotCell(ch catalog.TableChange) string {
	if ch.ReplacedSnapshotID != 0 {
		return fmt.Sprintf("%d (replaces %d)", ch.SnapshotID, ch.ReplacedSnapshotID)
	}
	return snapshotCell(ch.SnapshotID)
}

func (e *Env) tableHistory(c *urfave.Context) error {
	args, err := positional(c, "NAME")
	if err != nil {
		return err
	}
	id, err := e.tableIdent(args[0], "")
	if err != nil {
		return err
	}
	ref, err := e.readRef(c.String("ref"))
	if err != nil {
		return err
	}
	n, err := limit(c)
	if err != nil {
		return err
	}
	svc, err := e.Service(c.Context)
	if err != nil {
		return err
	}
	changes, err := svc.TableHistory(c.Context, ref, id, n)
	if err != nil {
		return err
	}
	views := make([]tableChangeView, 0, len(changes))
	for _, ch := range changes {
		views = append(views, tableChangeView{Change: ch.Change, SnapshotID: ch.SnapshotID, ReplacedSnapshotID: ch.ReplacedSnapshotID,
			MetadataLocation: ch.MetadataLocation, Commit: viewCommit(ch.Commit)})
	}
	return e.emit(views, func(w io.Writer) error {
		// SNAPSHOT comes last: its width varies with the ids.
		t := e.newTable("COMMIT", "TIME", "CHANGE", "AUTHOR", "MESSAGE", "SNAPSHOT")
		for _, ch := range changes {
			t.row(shortID(ch.Commit), formatTime(ch.Commit.Time), ch.Change, orDash(ch.Commit.Author), firstLine(ch.Commit.Message),
				historySnapshotCell(ch))
		}
		return t.write(w)
	})
}

func (e *Env) tableRevert(c *urfave.Context) error {
	args, err := positional(c, "NAME")
	if err != nil {
		return err
	}
	id, err := e.tableIdent(args[0], "")
	if err != nil {
		return err
	}
	if !c.IsSet("from") {
		return usageError(c, "missing --from REF: the ref whose state of %s to restore", id)
	}
	from, err := catalog.ParseRef(c.String("from"))
	if err != nil {
		return err
	}
	opts, err := e.commitOptions(c.String("message"))
	if err != nil {
		return err
	}
	svc, err := e.Service(c.Context)
	if err != nil {
		return err
	}
	branch, err := e.writeBranch(c.Context, c.String("branch"))
	if err != nil {
		return err
	}
	head, err := svc.Resolve(c.Context, catalog.Ref{Name: string(branch)})
	if err != nil {
		return err
	}
	commit, err := svc.RevertTable(c.Context, branch, id, from, opts)
	if err != nil {
		return err
	}
	if commit.ID == head.ID {
		// The catalog makes no commit for a change that changes nothing.
		v := writeView{Action: "unchanged", Table: id.String(), Branch: string(branch), From: from.String(), Commit: viewCommit(commit)}
		return e.emit(v, func(w io.Writer) error {
			_, err := fmt.Fprintf(w, "table %s on %s already matches its state at %s; nothing to revert (%s stays at %s)\n",
				id, branch, from, branch, shortID(commit))
			return err
		})
	}
	v := writeView{Action: "reverted", Table: id.String(), Branch: string(branch), From: from.String(), Commit: viewCommit(commit)}
	return e.emit(v, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "reverted table %s on %s to its state at %s (commit %s)\n", id, branch, from, shortID(commit))
		return err
	})
}
