package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/lakehouse-dev/lakehouse/catalog"
	urfave "github.com/urfave/cli/v2"
)

func (e *Env) importCommand() *urfave.Command {
	return &urfave.Command{
		Name:      "import",
		Usage:     "import Parquet/CSV files into a table (created if missing) in one commit",
		ArgsUsage: "NAME",
		Description: "Sources are files, directories or glob patterns; --from may repeat and\n" +
			"extra arguments after NAME are sources too (so --from dir/*.csv works).\n" +
			"Files already imported into the table are skipped.",
		Flags: []urfave.Flag{
			&urfave.StringSliceFlag{Name: "from", Usage: "file, directory or glob to import (repeatable)"},
			&urfave.StringFlag{Name: "mode", Value: string(catalog.ImportAppend), Usage: "append, replace (may change the columns) or overwrite-partitions (replace the partitions the new rows fall in)"},
			&urfave.StringSliceFlag{Name: "partitioned-by", Usage: "partition field of a new table: COLUMN or a transform like day(ts), bucket(16,id) (repeatable)"},
			branchFlag(),
			messageFlag(),
		},
		Action: e.tableImport,
	}
}

type importView struct {
	Table    string      `json:"table"`
	Branch   string      `json:"branch"`
	Mode     string      `json:"mode"`
	Created  bool        `json:"created"`
	Imported []string    `json:"imported"`
	Skipped  []string    `json:"skipped"`
	Rows     int64       `json:"rows"`
	Bytes    int64       `json:"bytes"`
	Warnings []string    `json:"warnings"`
	Commit   *commitView `json:"commit"`
}

func (e *Env) tableImport(c *urfave.Context) error {
	args, err := positional(c, "NAME", "[PATH]...")
	if err != nil {
		return err
	}
	id, err := e.tableIdent(args[0], "")
	if err != nil {
		return err
	}
	sources := append(c.StringSlice("from"), args[1:]...)
	if !c.IsSet("from") {
		return usageError(c, "missing --from PATH: the Parquet or CSV files to import into %s", id)
	}
	for _, s := range sources {
		if strings.TrimSpace(s) == "" {
			return usageError(c, "--from is empty")
		}
	}
	mode := catalog.ImportMode(c.String("mode"))
	if !mode.Valid() {
		return usageError(c, "invalid --mode %q: use append, replace or overwrite-partitions", mode)
	}
	partitionBy := c.StringSlice("partitioned-by")
	for _, p := range partitionBy {
		if strings.TrimSpace(p) == "" {
			return usageError(c, "--partitioned-by is empty: give a column or a transform like day(ts)")
		}
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
	line := e.progress(fmt.Sprintf("importing %s into %s on %s", plural(int64(len(sources)), "source", "sources"), id, branch))
	req := catalog.ImportRequest{
		Branch:      branch,
		Table:       id,
		Sources:     sources,
		Mode:        mode,
		PartitionBy: partitionBy,
		Commit:      opts,
	}
	if line != nil {
		req.Progress = line.importProgress
	}
	res, err := svc.ImportTable(c.Context, req)
	line.stop()
	if err != nil {
		return err
	}
	v := importView{Table: id.String(), Branch: string(branch), Mode: string(mode), Created: res.Created,
		Imported: nonNil(res.Imported), Skipped: nonNil(res.Skipped), Rows: res.Rows, Bytes: res.Bytes,
		Warnings: nonNil(res.Warnings), Commit: viewCommit(res.Commit)}
	if !e.JSON() {
		for _, w := range res.Warnings {
			fmt.Fprintf(e.Stderr, "warning: %s\n", w)
		}
	}
	return e.emit(v, func(w io.Writer) error {
		verb := "imported into"
		if res.Created {
			verb = "created"
		}
		for _, f := range res.Imported {
			fmt.Fprintf(w, "  imported  %s\n", f)
		}
		for _, f := range res.Skipped {
			fmt.Fprintf(w, "  skipped   %s (already imported)\n", f)
		}
		if res.Commit == nil {
			_, err := fmt.Fprintf(w, "nothing to import into %s on %s: every file was already imported\n", id, branch)
			return err
		}
		_, err := fmt.Fprintf(w, "%s %s on %s: %s, %s, %s read (commit %s)\n", verb, id, branch,
			plural(int64(len(res.Imported)), "file", "files"), plural(res.Rows, "row", "rows"),
			humanBytes(res.Bytes), shortID(res.Commit))
		return err
	})
}
