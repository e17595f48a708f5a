package iceberg

import (
	"encoding/json"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/apache/iceberg-go/table"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/arrowipc"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Snapshot summary properties written by imports.
const (
	// PropImportSources lists the files an import read, as a JSON array of
	// importedSource.
	PropImportSources = "lakehouse.import.sources"
	// PropImportMode is the import mode ("append", "replace" or
	// "overwrite-partitions").
	PropImportMode = "lakehouse.import.mode"
	// PropMergedFrom is the snapshot id whose appended files a merge
	// snapshot adds: the merged side's snapshot the merge snapshot
	// replaces in this side's history (catalog.SnapshotInfo's
	// ReplacedSnapshotID).
	PropMergedFrom = "lakehouse.merge.from-snapshot"
)

// fileKind is the format of a source file.
type fileKind int

const (
	kindParquet fileKind = iota
	kindCSV
	kindIPC // Arrow IPC file format (Feather v2)
	// kindCSVText is a staged upload of a CSV file's fields as text
	// columns: read like a CSV file, from an Arrow IPC file.
	kindCSVText
)

// sourceKinds is how errors name the files import reads.
const sourceKinds = ".parquet, .csv and Arrow IPC (.arrow, .feather, .ipc)"

// sourceFile is one file an import reads.
type sourceFile struct {
	// importedSource names the file in messages and in the snapshot
	// summary; for a staged upload it is the client's file.
	importedSource
	kind fileKind
	// file, fileSize and fileMtime are the file read on this machine:
	// the same as importedSource for a local file, the staged copy for an
	// upload.
	file      string
	fileSize  int64
	fileMtime int64
	// remote is set for a file in object storage, downloaded to file
	// (by fetchRemote) only when the import reads it.
	remote *remoteObject
}

// localSource describes a local file.
func localSource(path string, k fileKind, info iofs.FileInfo) sourceFile {
	id := importedSource{Path: path, Size: info.Size(), MtimeNs: info.ModTime().UnixNano()}
	return sourceFile{importedSource: id, kind: k, file: path, fileSize: id.Size, fileMtime: id.MtimeNs}
}

// stagedSources describes the files clients staged for an import.
func stagedSources(staged []catalog.StagedSource) ([]sourceFile, error) {
	out := make([]sourceFile, 0, len(staged))
	for _, st := range staged {
		k := kindIPC
		switch st.Format {
		case "":
		case catalog.StagedCSV:
			k = kindCSVText
		default:
			return nil, errdefs.New(errdefs.ErrInvalidArgument, "upload of %s: unknown format %q", st.Name, st.Format)
		}
		info, err := os.Stat(st.Path)
		if err != nil {
			return nil, errdefs.New(errdefs.ErrNotFound, "upload of %s is gone: %v", st.Name, err)
		}
		out = append(out, sourceFile{
			importedSource: importedSource{Path: st.Name, Size: st.Size, MtimeNs: st.MtimeNs},
			kind:           k, file: st.Path, fileSize: info.Size(), fileMtime: info.ModTime().UnixNano()})
	}
	return out, nil
}

// importedSource identifies a file as it was when imported: the same path,
// size and modification time means the same content, for the purpose of
// skipping files already imported.
type importedSource struct {
	Path    string `json:"path"`
	Size    int64  `json:"size"`
	MtimeNs int64  `json:"mtime_ns"`
}

// kindOf returns the format a file name says it has.
func kindOf(path string) (fileKind, bool) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".parquet", ".parq":
		return kindParquet, true
	case ".csv":
		return kindCSV, true
	case ".arrow", ".feather", ".ipc":
		return kindIPC, true
	}
	return 0, false
}

// sniffKind recognizes a file of another extension by its first bytes: an
// Arrow IPC file starts with "ARROW1".
func sniffKind(path string) (fileKind, bool) {
	return kindIPC, arrowipc.HasMagic(path)
}

func hasGlobMeta(s string) bool { return strings.ContainsAny(s, "*?[") }

// expandSources resolves the sources of an import (files, directories,
// globs) into files, in order, without duplicates.
func expandSources(sources []string) ([]sourceFile, error) {
	var out []sourceFile
	seen := map[string]bool{}
	add := func(path string, info iofs.FileInfo) error {
		k, ok := kindOf(path)
		if !ok {
			k, ok = sniffKind(path)
		}
		if !ok {
			return errdefs.WithHint(errdefs.ErrInvalidArgument, "import reads "+sourceKinds+" files",
				"file %s: unsupported file format %q", path, filepath.Ext(path))
		}
		if seen[path] {
			return nil
		}
		seen[path] = true
		out = append(out, localSource(path, k, info))
		return nil
	}
	for _, src := range sources {
		if src == "" {
			return nil, errdefs.New(errdefs.ErrInvalidArgument, "an import source is empty")
		}
		abs, err := filepath.Abs(src)
		if err != nil {
			return nil, errdefs.New(errdefs.ErrInvalidArgument, "source %q: %v", src, err)
		}
		paths := []string{abs}
		if hasGlobMeta(src) {
			if _, err := os.Lstat(abs); err != nil { // a name that merely contains '*' is a file
				matches, err := filepath.Glob(abs)
				if err != nil {
					return nil, errdefs.New(errdefs.ErrInvalidArgument, "source %q is not a valid glob pattern: %v", src, err)
				}
				paths = matches[:0]
				for _, m := range matches {
					if !hiddenName(filepath.Base(m)) { // _SUCCESS, .crc and the like
						paths = append(paths, m)
					}
				}
				if len(paths) == 0 {
					return nil, errdefs.New(errdefs.ErrNotFound, "source %q matches no files", src)
				}
				sort.Strings(paths)
			}
		}
		for _, p := range paths {
			info, err := os.Stat(p)
			if errors.Is(err, iofs.ErrNotExist) {
				return nil, errdefs.New(errdefs.ErrNotFound, "source %s does not exist", p)
			}
			if err != nil {
				return nil, fmt.Errorf("source %s: %w", p, err)
			}
			if !info.IsDir() {
				if !info.Mode().IsRegular() {
					return nil, errdefs.New(errdefs.ErrInvalidArgument, "source %s is not a regular file", p)
				}
				if err := add(p, info); err != nil {
					return nil, err
				}
				continue
			}
			n := len(out)
			files, err := dataFilesIn(p)
			if err != nil {
				return nil, err
			}
			for _, f := range files {
				if err := add(f.path, f.info); err != nil {
					return nil, err
				}
			}
			if len(files) == 0 && n == len(out) {
				return nil, errdefs.New(errdefs.ErrNotFound, "directory %s contains no .parquet, .csv, .arrow, .feather or .ipc files", p)
			}
		}
	}
	return out, nil
}

type dirFile struct {
	path string
	info iofs.FileInfo
}

// dataFilesIn returns the files under dir whose extension import reads,
// recursively, sorted by path. Hidden files and directories (".name",
// "_name", as Spark and Hadoop leave behind) are ignored.
func dataFilesIn(dir string) ([]dirFile, error) {
	var out []dirFile
	err := filepath.WalkDir(dir, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir && hiddenName(d.Name()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		if _, ok := kindOf(p); !ok {
			return nil
		}
		info, err := os.Stat(p)
		if err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			out = append(out, dirFile{path: p, info: info})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading directory %s: %w", dir, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out, nil
}

// hiddenName reports whether a file or directory name is one data tools
// leave beside their output (".crc", "_SUCCESS", "_delta_log") rather than
// data.
func hiddenName(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")
}

// importedSources returns the sources recorded by the snapshots of the
// current snapshot's lineage, back to and including the last snapshot that
// replaced the table's contents (anything older is gone from the table).
func importedSources(md table.Metadata) (map[importedSource]bool, error) {
	out := map[importedSource]bool{}
	for s := md.CurrentSnapshot(); s != nil; {
		if s.Summary != nil {
			if v, ok := s.Summary.Properties[PropImportSources]; ok {
				var list []importedSource
				if err := json.Unmarshal([]byte(v), &list); err != nil {
					return nil, fmt.Errorf("snapshot %d: bad %s property: %w", s.SnapshotID, PropImportSources, err)
				}
				for _, src := range list {
					out[src] = true
				}
			}
			if s.Summary.Operation != table.OpAppend || s.Summary.Properties[PropImportMode] == string(catalog.ImportReplace) {
				break
			}
		}
		if s.ParentSnapshotID == nil {
			break
		}
		s = md.SnapshotByID(*s.ParentSnapshotID)
	}
	return out, nil
}
