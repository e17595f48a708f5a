package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"

	"github.com/google/uuid"
	"github.com/lakehouse-dev/lakehouse/catalog/warehouse"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Environment variables of the warehouse.
const (
	envWarehouse  = "LAKEHOUSE_WAREHOUSE"
	envS3Endpoint = "LAKEHOUSE_S3_ENDPOINT"
)

// warehouseSettings is <data-dir>/warehouse.json, written when the catalog
// is created: where its tables live. Later commands use it; a --warehouse
// that names another warehouse is an error.
type warehouseSettings struct {
	Version int `json:"version"`
	// ID names the catalog; a copy of the data dir has the same ID.
	ID string `json:"id"`
	// URI is the warehouse; "" is the default, <data-dir>/warehouse,
	// which moves with the data dir.
	URI string `json:"uri,omitempty"`
	// LocationRoot is the directory the default warehouse had when the
	// catalog was created: the table metadata names files under it,
	// wherever the data dir is now.
	LocationRoot string `json:"location_root,omitempty"`
	// S3Endpoint is the endpoint of an S3-compatible service (MinIO).
	S3Endpoint string `json:"s3_endpoint,omitempty"`
	// DataDir is where the data dir was when last opened: another path
	// means it was moved or copied since.
	DataDir string `json:"data_dir"`
}

const warehouseSettingsVersion = 1

// warehouseSettingsPath is the settings file.
func (e *Env) warehouseSettingsPath() string { return filepath.Join(e.DataDir, "warehouse.json") }

func readWarehouseSettings(path string) (*warehouseSettings, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s warehouseSettings
	if err := json.Unmarshal(b, &s); err != nil || s.Version == 0 {
		return nil, errdefs.WithHint(errdefs.ErrDataLoss, "restore it from a backup of the data dir",
			"warehouse settings %s are damaged", path)
	}
	if s.Version > warehouseSettingsVersion {
		return nil, errdefs.WithHint(errdefs.ErrFailedPrecondition, "upgrade lakehouse",
			"warehouse settings %s are of version %d, newer than this lakehouse knows (%d)", path, s.Version, warehouseSettingsVersion)
	}
	return &s, nil
}

func writeWarehouseSettings(path string, s *warehouseSettings) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp-" + uuid.NewString()
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fileError("write", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fileError("write", path, err)
	}
	return nil
}

// warehouseFlag is --warehouse, else $LAKEHOUSE_WAREHOUSE, as a canonical
// URI ("" when neither is set).
func (e *Env) warehouseFlag() (string, error) {
	v := e.warehouseArg
	if v == "" {
		v = e.Getenv(envWarehouse)
	}
	if v == "" {
		return "", nil
	}
	loc, err := warehouse.ParseLocation(v)
	if err != nil {
		return "", err
	}
	return loc.String(), nil
}

// defaultWarehouseURI is the URI of the default warehouse.
func (e *Env) defaultWarehouseURI() string { return "file://" + e.WarehouseDir() }

// WarehouseURI is the warehouse commands use, without creating anything:
// the stored setting, else the flag, else the default.
func (e *Env) WarehouseURI() string {
	if s, err := readWarehouseSettings(e.warehouseSettingsPath()); err == nil {
		if s.URI != "" {
			return s.URI
		}
		return e.defaultWarehouseURI()
	}
	if u, err := e.warehouseFlag(); err == nil && u != "" {
		return u
	}
	return e.defaultWarehouseURI()
}

// resolveWarehouse reads the warehouse settings of the data dir, writing
// them when the catalog is new (or was created before they existed), and
// checks them against --warehouse and against where the data dir is now:
// a moved data dir is recorded, a copy is refused until adopted.
func (e *Env) resolveWarehouse() (*warehouseSettings, error) {
	flag, err := e.warehouseFlag()
	if err != nil {
		return nil, err
	}
	path := e.warehouseSettingsPath()
	s, err := readWarehouseSettings(path)
	switch {
	case errors.Is(err, iofs.ErrNotExist):
		s = &warehouseSettings{Version: warehouseSettingsVersion, ID: uuid.NewString(), DataDir: e.DataDir}
		if _, cerr := os.Stat(e.CatalogPath()); cerr == nil && flag != "" && flag != e.defaultWarehouseURI() {
			// A catalog from before warehouse settings: its tables are
			// in the default warehouse.
			return nil, errdefs.WithHint(errdefs.ErrFailedPrecondition, "drop --warehouse and "+envWarehouse,
				"the catalog in %s keeps its tables in %s, not %s", e.DataDir, e.WarehouseDir(), flag)
		}
		if flag != "" && flag != e.defaultWarehouseURI() {
			s.URI = flag
			s.S3Endpoint = e.s3Endpoint("")
		} else {
			s.LocationRoot = e.WarehouseDir()
		}
		if err := os.MkdirAll(e.DataDir, 0o755); err != nil {
			return nil, fileError("create", e.DataDir, err)
		}
		if err := writeWarehouseSettings(path, s); err != nil {
			return nil, err
		}
		return s, nil
	case err != nil:
		return nil, err
	}
	stored := s.URI
	if stored == "" {
		stored = e.defaultWarehouseURI()
	}
	if flag != "" && flag != stored {
		return nil, errdefs.WithHint(errdefs.ErrFailedPrecondition,
			"drop --warehouse and "+envWarehouse+", or use another --data-dir for a catalog on "+flag,
			"the catalog in %s keeps its tables in %s, not %s", e.DataDir, stored, flag)
	}
	if s.DataDir != e.DataDir && !sameDir(s.DataDir, e.DataDir) {
		if e.isCopyOf(s) {
			return nil, e.copyError(s)
		}
		// Moved: the default warehouse moved along, and its old
		// locations map to the new directory.
		s.DataDir = e.DataDir
		if err := writeWarehouseSettings(path, s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// isCopyOf reports whether the data dir s was recorded at still exists as
// the same catalog: this one is then a copy of it.
func (e *Env) isCopyOf(s *warehouseSettings) bool {
	o, err := readWarehouseSettings(filepath.Join(s.DataDir, "warehouse.json"))
	return err == nil && o.ID == s.ID
}

func (e *Env) copyError(s *warehouseSettings) error {
	if s.URI != "" {
		return errdefs.WithHint(errdefs.ErrFailedPrecondition,
			fmt.Sprintf("use the original (--data-dir %s), or remove this copy", s.DataDir),
			"the data dir %s is a copy of %s, and both keep their tables in %s: each would write beside and garbage-collect the other's files",
			e.DataDir, s.DataDir, s.URI)
	}
	return errdefs.WithHint(errdefs.ErrFailedPrecondition,
		fmt.Sprintf("to keep the copy as a catalog of its own, run `lakehouse --data-dir %s doctor --adopt-copy`; else use the original (--data-dir %s)", e.DataDir, s.DataDir),
		"the data dir %s is a copy of %s", e.DataDir, s.DataDir)
}

// adoptCopy makes a copied data dir a catalog of its own.
func (e *Env) adoptCopy() (adopted bool, err error) {
	path := e.warehouseSettingsPath()
	s, err := readWarehouseSettings(path)
	if err != nil {
		if errors.Is(err, iofs.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	if s.DataDir == e.DataDir || sameDir(s.DataDir, e.DataDir) || !e.isCopyOf(s) {
		return false, nil
	}
	if s.URI != "" {
		return false, e.copyError(s)
	}
	s.ID, s.DataDir = uuid.NewString(), e.DataDir
	return true, writeWarehouseSettings(path, s)
}

// sameDir reports whether a and b are the same existing directory.
func sameDir(a, b string) bool {
	ai, err := os.Stat(a)
	if err != nil {
		return false
	}
	bi, err := os.Stat(b)
	return err == nil && os.SameFile(ai, bi)
}

// s3Endpoint is --s3-endpoint, else $LAKEHOUSE_S3_ENDPOINT, else stored.
func (e *Env) s3Endpoint(stored string) string {
	if e.s3EndpointArg != "" {
		return e.s3EndpointArg
	}
	if v := e.Getenv(envS3Endpoint); v != "" {
		return v
	}
	return stored
}

// openWarehouse opens the Storage of the settings.
func (e *Env) openWarehouse(ctx context.Context, s *warehouseSettings) (warehouse.Storage, error) {
	if s.URI == "" {
		return warehouse.NewLocal(e.WarehouseDir(), s.LocationRoot)
	}
	return warehouse.Open(ctx, warehouse.Config{URI: s.URI, S3: warehouse.S3Options{Endpoint: e.s3Endpoint(s.S3Endpoint)}})
}

// CacheDir holds local copies of remote data files.
func (e *Env) CacheDir() string { return filepath.Join(e.DataDir, "cache") }
