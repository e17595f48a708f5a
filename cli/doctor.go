package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	urfave "github.com/urfave/cli/v2"
)

func (e *Env) doctorCommand() *urfave.Command {
	return &urfave.Command{
		Name:  "doctor",
		Usage: "check that everything the catalog records is there",
		Description: "Reads the whole catalog file (every page, every key) and checks that every\n" +
			"branch and tag resolves, that every commit reachable from them and its tree are\n" +
			"stored, and that every table state they name (and those gc keeps of merge\n" +
			"bases in expired history) has its metadata file, manifests and data files,\n" +
			"each data file of the size its manifest records. It only\n" +
			"reads (except with --adopt-copy). Exit 0 when all is well, 1 with the list of\n" +
			"problems otherwise.",
		Flags: []urfave.Flag{
			&urfave.BoolFlag{Name: "adopt-copy", Usage: "make a copied data dir a catalog of its own: it then reads and writes only its own warehouse"},
		},
		Action: e.doctor,
	}
}

// doctorer is the part of the embedded catalog.Local that doctor uses.
type doctorer interface {
	Doctor(ctx context.Context) (*catalog.DoctorReport, error)
}

type doctorView struct {
	Catalog string `json:"catalog"`
	OK      bool   `json:"ok"`
	*catalog.DoctorReport
}

func (e *Env) doctor(c *urfave.Context) error {
	if _, err := positional(c); err != nil {
		return err
	}
	if err := e.localOnly("doctor"); err != nil {
		return err
	}
	ctx := c.Context
	if c.Bool("adopt-copy") {
		adopted, err := e.adoptCopy()
		if err != nil {
			return err
		}
		if adopted && !e.JSON() {
			fmt.Fprintf(e.Stderr, "%s is now a catalog of its own\n", e.DataDir)
		}
	}
	v := doctorView{Catalog: e.CatalogPath(), DoctorReport: &catalog.DoctorReport{Problems: []catalog.Problem{}}}
	// The file first: the catalog cannot be walked through a damaged one.
	store, err := e.catalogFile()
	if err != nil && !errdefs.Is(err, errdefs.ErrDataLoss) {
		return err
	}
	if err == nil {
		var problems []error
		problems, err = store.Check(ctx)
		store.Close()
		if err != nil && !errdefs.Is(err, errdefs.ErrDataLoss) {
			return err
		}
		for _, p := range problems {
			v.Problems = append(v.Problems, catalog.Problem{Where: "catalog file", What: p.Error()})
		}
	}
	if err != nil {
		v.Problems = append(v.Problems, catalog.Problem{Where: "catalog file", What: err.Error()})
	}
	if len(v.Problems) == 0 {
		svc, err := e.Service(ctx)
		if err != nil {
			return err
		}
		d, ok := svc.(doctorer)
		if !ok {
			return errdefs.New(errdefs.ErrUnavailable, "this catalog cannot be checked from here")
		}
		r, err := d.Doctor(ctx)
		if err != nil {
			return err
		}
		v.DoctorReport = r
	}
	v.OK = len(v.Problems) == 0
	if err := e.emit(v, func(w io.Writer) error { return writeDoctor(w, &v) }); err != nil {
		return err
	}
	if !v.OK {
		return errdefs.New(errdefs.ErrDataLoss, "doctor found %s in the catalog (listed above)",
			plural(int64(len(v.Problems)), "problem", "problems"))
	}
	return nil
}

func writeDoctor(w io.Writer, v *doctorView) error {
	if v.OK {
		bases := ""
		if v.MergeBases > 0 {
			bases = ", " + plural(int64(v.MergeBases), "merge base", "merge bases") + " in expired history"
		}
		_, err := fmt.Fprintf(w, "ok: %s, %s, %s%s, %s, %s, %s checked\n",
			plural(int64(v.Branches), "branch", "branches"), plural(int64(v.Tags), "tag", "tags"),
			plural(int64(v.Commits), "commit", "commits"), bases, plural(int64(v.Trees), "tree", "trees"),
			plural(int64(v.Tables), "table state", "table states"), plural(int64(v.Files), "data file", "data files"))
		return err
	}
	for _, p := range v.Problems {
		if _, err := fmt.Fprintf(w, "%s: %s\n", p.Where, p.What); err != nil {
			return err
		}
	}
	return nil
}
