package iceberg

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/lakehouse-dev/lakehouse/catalog/warehouse"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Imports from object storage. An s3:// source names one object, or a
// prefix (ending in "/", or naming no object) whose objects of a known
// kind are imported in key order, hidden names skipped as in a local
// directory. The objects are resolved first (so that an append skips
// those already imported, by URI, size and modification time) and only
// the kept ones are downloaded, into a temporary directory removed when
// the import ends.

// remoteObject is where a source file comes from when it is not local.
type remoteObject struct {
	store warehouse.Storage
	key   string
}

// isRemoteSource reports whether a source names object storage.
func isRemoteSource(src string) bool { return strings.HasPrefix(src, "s3://") }

// resolveSources is expandSources with s3:// sources, in order, without
// duplicates.
func (f *Format) resolveSources(ctx context.Context, sources []string) ([]sourceFile, error) {
	var out []sourceFile
	seen := map[string]bool{}
	var local []string
	flush := func() error {
		if len(local) == 0 {
			return nil
		}
		files, err := expandSources(local)
		local = nil
		if err != nil {
			return err
		}
		for _, fl := range files {
			if !seen[fl.Path] {
				seen[fl.Path] = true
				out = append(out, fl)
			}
		}
		return nil
	}
	for _, src := range sources {
		if !isRemoteSource(src) {
			local = append(local, src)
			continue
		}
		if err := flush(); err != nil {
			return nil, err
		}
		files, err := f.resolveRemote(ctx, src)
		if err != nil {
			return nil, err
		}
		for _, fl := range files {
			if !seen[fl.Path] {
				seen[fl.Path] = true
				out = append(out, fl)
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

// resolveRemote lists the objects an s3:// source names.
func (f *Format) resolveRemote(ctx context.Context, src string) ([]sourceFile, error) {
	if hasGlobMeta(src) {
		return nil, errdefs.WithHint(errdefs.ErrInvalidArgument, "name an object, or a prefix ending in /",
			"source %s: glob patterns are not supported for s3:// sources", src)
	}
	loc, err := warehouse.ParseLocation(src)
	if err != nil {
		return nil, err
	}
	key := loc.Path
	loc.Path = ""
	store, err := f.opts.OpenSource(ctx, loc)
	if err != nil {
		return nil, err
	}
	uri := func(k string) string { return loc.String() + "/" + k }
	if key != "" && !strings.HasSuffix(src, "/") {
		objs, err := listObjects(ctx, store, key, func(k string) bool { return k == key })
		if err != nil {
			return nil, err
		}
		if len(objs) == 1 {
			o := objs[0]
			k, ok := kindOf(o.Key)
			if !ok {
				return nil, errdefs.WithHint(errdefs.ErrInvalidArgument, "import reads "+sourceKinds+" files",
					"file %s: unsupported file format %q", uri(o.Key), filepath.Ext(o.Key))
			}
			return []sourceFile{remoteSource(store, uri(o.Key), o, k)}, nil
		}
	}
	prefix := key
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	objs, err := listObjects(ctx, store, prefix, func(k string) bool {
		for _, part := range strings.Split(strings.TrimPrefix(k, prefix), "/") {
			if hiddenName(part) {
				return false
			}
		}
		_, ok := kindOf(k)
		return ok
	})
	if err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		return nil, errdefs.New(errdefs.ErrNotFound, "source %s: no object of that name, and no .parquet, .csv, .arrow, .feather or .ipc objects under it", src)
	}
	out := make([]sourceFile, len(objs))
	for i, o := range objs {
		k, _ := kindOf(o.Key)
		out[i] = remoteSource(store, uri(o.Key), o, k)
	}
	return out, nil
}

func listObjects(ctx context.Context, store warehouse.Storage, prefix string, keep func(string) bool) ([]warehouse.ObjectInfo, error) {
	var out []warehouse.ObjectInfo
	err := store.List(ctx, prefix, func(o warehouse.ObjectInfo) error {
		if keep(o.Key) {
			out = append(out, o)
		}
		return nil
	})
	return out, err
}

func remoteSource(store warehouse.Storage, uri string, o warehouse.ObjectInfo, k fileKind) sourceFile {
	return sourceFile{
		importedSource: importedSource{Path: uri, Size: o.Size, MtimeNs: o.ModTime.UnixNano()},
		kind:           k,
		remote:         &remoteObject{store: store, key: o.Key},
	}
}

// fetchRemote downloads the remote files into a new temporary directory,
// which the returned function removes.
func fetchRemote(ctx context.Context, files []sourceFile) (cleanup func(), err error) {
	cleanup = func() {}
	var dir string
	for i := range files {
		src := &files[i]
		if src.remote == nil {
			continue
		}
		if dir == "" {
			if dir, err = os.MkdirTemp("", "lakehouse-import-"); err != nil {
				return cleanup, fmt.Errorf("downloading sources: %w", err)
			}
			cleanup = func() { os.RemoveAll(dir) }
		}
		p := filepath.Join(dir, fmt.Sprintf("%d%s", i, filepath.Ext(src.remote.key)))
		if err := download(ctx, src.remote, p, src.Size); err != nil {
			return cleanup, fmt.Errorf("source %s: %w", src.Path, err)
		}
		info, err := os.Stat(p)
		if err != nil {
			return cleanup, err
		}
		src.file, src.fileSize, src.fileMtime = p, info.Size(), info.ModTime().UnixNano()
	}
	return cleanup, nil
}

func download(ctx context.Context, r *remoteObject, dst string, size int64) error {
	rc, err := r.store.ReadRange(ctx, r.key, 0, -1)
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, rc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if n != size {
		return errdefs.WithHint(errdefs.ErrConflict, "import it again once it is complete", "the object changed while it was imported")
	}
	return nil
}
