package cli

import (
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog/bolt"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	urfave "github.com/urfave/cli/v2"
)

func (e *Env) backupCommand() *urfave.Command {
	return &urfave.Command{
		Name:      "backup",
		Usage:     "write a consistent copy of the catalog file",
		ArgsUsage: "FILE",
		Description: "Copies <data-dir>/catalog.db (refs, commits, trees, run records) to FILE from one\n" +
			"read transaction, so other lakehouse processes keep working meanwhile. The\n" +
			"warehouse is not copied: its files are never changed in place. To restore,\n" +
			"stop lakehouse and copy FILE over <data-dir>/catalog.db.",
		Flags: []urfave.Flag{
			&urfave.BoolFlag{Name: "force", Usage: "replace FILE if it exists"},
		},
		Action: e.backup,
	}
}

type backupView struct {
	Catalog string `json:"catalog"`
	Path    string `json:"path"`
	Bytes   int64  `json:"bytes"`
}

func (e *Env) backup(c *urfave.Context) error {
	args, err := positional(c, "FILE")
	if err != nil {
		return err
	}
	if err := e.localOnly("backup"); err != nil {
		return err
	}
	path, err := filepath.Abs(args[0])
	if err != nil {
		return err
	}
	if path == e.CatalogPath() {
		return usageError(c, "FILE is the catalog file itself")
	}
	store, err := e.catalogFile()
	if err != nil {
		return err
	}
	defer store.Close()
	n, err := bolt.BackupFile(c.Context, store, path, c.Bool("force"))
	if err != nil {
		return err
	}
	v := backupView{Catalog: e.CatalogPath(), Path: path, Bytes: n}
	return e.emit(v, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "backed up %s to %s (%s)\n", v.Catalog, v.Path, humanBytes(v.Bytes))
		return err
	})
}

// catalogFile opens the embedded catalog's bbolt file read-only, for the
// commands that work on the file itself (backup, doctor). Like the service
// it holds the file only while a transaction runs.
func (e *Env) catalogFile() (*bolt.Shared, error) {
	timeout, err := e.lockTimeout()
	if err != nil {
		return nil, err
	}
	store, err := bolt.OpenShared(e.CatalogPath(), bolt.Options{Timeout: timeout, ReadOnly: true})
	if errdefs.Is(err, errdefs.ErrNotFound) {
		return nil, errdefs.WithHint(errdefs.ErrNotFound, "check --data-dir",
			"there is no catalog file at %s", e.CatalogPath())
	}
	return store, err
}

// lockTimeout is how long to wait for another process holding the catalog
// file: $LAKEHOUSE_LOCK_TIMEOUT, else defaultLockTimeout.
func (e *Env) lockTimeout() (time.Duration, error) {
	v := e.Getenv(envLockTimeout)
	if v == "" {
		return defaultLockTimeout, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, errdefs.WithHint(errdefs.ErrInvalidArgument, "use a duration such as 3s or 500ms",
			"invalid %s=%q", envLockTimeout, v)
	}
	return d, nil
}
