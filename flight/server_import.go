package flight

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// uploads are the files clients staged with DoPut, waiting for the
// ImportTable that names them. Each is an Arrow IPC file in dir; an
// import consumes (and removes) its uploads whether it succeeds or not,
// and the sweeper removes those left unused for ttl.
type uploads struct {
	dir string
	max int64
	ttl time.Duration

	mu    sync.Mutex
	files map[string]*upload
	// bytes counts the staged files, those being written included.
	bytes int64
}

type upload struct {
	path    string
	user    string
	src     catalog.StagedSource
	expires time.Time
}

// registerImport adds the import action (its files come with DoPut) and
// starts the sweeper of unused uploads.
func (s *Server) registerImport() {
	u := &uploads{dir: s.opts.UploadDir, max: s.opts.MaxUploadBytes, ttl: s.opts.UploadTTL, files: map[string]*upload{}}
	if u.max <= 0 {
		u.max = DefaultMaxUploadBytes
	}
	if u.ttl <= 0 {
		u.ttl = DefaultUploadTTL
	}
	s.uploads = u
	if u.dir != "" {
		// Uploads of an earlier run of the server: nothing names them now.
		if ents, err := os.ReadDir(u.dir); err == nil {
			for _, e := range ents {
				if strings.HasSuffix(e.Name(), uploadSuffix) {
					os.Remove(filepath.Join(u.dir, e.Name()))
				}
			}
		}
		go u.sweep(s.stop)
	}
	unary(s, ActionImportTable, "import files sent with DoPut into a table on a branch", PermWrite,
		func(ctx context.Context, b ImportBody) (any, error) { return s.importTable(ctx, b) })
	unary(s, ActionCheckImport, "check an import's branch, namespace and table before its files are sent", PermWrite,
		func(ctx context.Context, b ImportBody) (any, error) { return nil, s.checkImport(ctx, b) })
	unary(s, ActionDiscardUploads, "remove uploads no import will name", PermRead,
		func(ctx context.Context, b DiscardUploadsBody) (any, error) {
			claimed, _ := s.uploads.claim(PrincipalFrom(ctx).User, b.Uploads)
			s.uploads.remove(claimed)
			return nil, nil
		})
}

const uploadSuffix = ".upload.arrow"

// sweep removes the uploads whose import never came.
func (u *uploads) sweep(stop <-chan struct{}) {
	t := time.NewTicker(min(time.Minute, u.ttl/2))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			u.mu.Lock()
			for id, f := range u.files {
				if now.After(f.expires) {
					u.drop(id, f)
				}
			}
			u.mu.Unlock()
		}
	}
}

// drop removes an upload; u.mu is held.
func (u *uploads) drop(id string, f *upload) {
	delete(u.files, id)
	if info, err := os.Stat(f.path); err == nil {
		u.bytes -= info.Size()
	}
	os.Remove(f.path)
}

// reserve counts n more bytes staged, failing past the bound.
func (u *uploads) reserve(n int64) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.bytes+n > u.max {
		return errdefs.WithHint(errdefs.ErrFailedPrecondition,
			"import fewer or smaller files at a time, or wait for the imports under way (the bound is `serve --max-upload-bytes`)",
			"the server stages at most %s of uploads at once, and this one goes beyond", humanSize(u.max))
	}
	u.bytes += n
	return nil
}

func (u *uploads) release(n int64) {
	u.mu.Lock()
	u.bytes -= n
	u.mu.Unlock()
}

// claim takes the uploads ids of user out of the registry: an import
// consumes the uploads it names, whatever its outcome. It returns those it
// found, and an error naming the first it did not.
func (u *uploads) claim(user string, ids []string) ([]*upload, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []*upload
	var err error
	for _, id := range ids {
		f, ok := u.files[id]
		if !ok || f.user != user {
			if err == nil {
				err = errdefs.WithHint(errdefs.ErrNotFound, "send the file again (an upload waits "+u.ttl.String()+" for the one import that names it)",
					"upload %s is unknown, used or expired", id)
			}
			continue
		}
		delete(u.files, id)
		out = append(out, f)
	}
	return out, err
}

// remove deletes the files of claimed uploads.
func (u *uploads) remove(fs []*upload) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, f := range fs {
		if info, err := os.Stat(f.path); err == nil {
			u.bytes -= info.Size()
		}
		os.Remove(f.path)
	}
}

// countingWriter counts the bytes written to a staged file and refuses to
// go past the uploads' bound.
type countingWriter struct {
	w io.Writer
	u *uploads
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if err := c.u.reserve(int64(len(p))); err != nil {
		return 0, err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	if n < len(p) {
		c.u.release(int64(len(p) - n))
	}
	return n, err
}

// DoPut stages the batches a client sends as an Arrow IPC file and
// answers its upload id (see UploadCommand). Batches stream to the file:
// nothing is held whole.
func (s *Server) DoPut(stream flight.FlightService_DoPutServer) error {
	ctx := stream.Context()
	s.opts.Metrics.request("DoPut")
	start := time.Now()
	res, err := s.doPut(ctx, stream)
	s.opts.Metrics.done("DoPut", time.Since(start), err)
	if err != nil {
		s.opts.Log.Debug("upload failed", "user", PrincipalFrom(ctx).User, "err", err)
		return ToStatus(err)
	}
	meta, _ := json.Marshal(res)
	return stream.Send(&flight.PutResult{AppMetadata: meta})
}

func (s *Server) doPut(ctx context.Context, stream flight.FlightService_DoPutServer) (*UploadResult, error) {
	// An upload names no branch yet (its import does, and is checked
	// then): it takes a key that may write some branch.
	if p := PrincipalFrom(ctx); s.opts.Auth != nil && p.Role != RoleAdmin && p.Role != RoleWriter {
		return nil, errdefs.WithHint(errdefs.ErrPermissionDenied, "ask an admin for a writer key",
			"user %s (%s) may not upload files: imports need a writer or admin key", p.User, p.Role)
	}
	if s.uploads.dir == "" {
		return nil, errorf(errdefs.ErrFailedPrecondition, "this server takes no uploads")
	}
	rdr, err := flight.NewRecordReader(stream, ipc.WithAllocator(memory.DefaultAllocator))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, errdefs.WithHint(errdefs.ErrInvalidArgument, "send the file's schema, then its record batches",
			"upload: the stream does not start with an Arrow schema: %v", err)
	}
	defer rdr.Release()
	up, err := readUpload(rdr.LatestFlightDescriptor())
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.uploads.dir, 0o700); err != nil {
		return nil, fmt.Errorf("upload directory: %w", err)
	}
	id := newID()
	path := filepath.Join(s.uploads.dir, id+uploadSuffix)
	rows, size, err := s.uploads.write(ctx, path, rdr)
	if err != nil {
		os.Remove(path)
		s.uploads.release(size)
		return nil, err
	}
	u := s.uploads
	u.mu.Lock()
	u.files[id] = &upload{path: path, user: PrincipalFrom(ctx).User, expires: time.Now().Add(u.ttl),
		src: catalog.StagedSource{Path: path, Name: up.Name, Size: up.Size, MtimeNs: up.MtimeNs, Format: up.Format}}
	u.mu.Unlock()
	return &UploadResult{UploadID: id, Rows: rows, Bytes: size}, nil
}

// readUpload checks the descriptor of a DoPut.
func readUpload(desc *flight.FlightDescriptor) (*Upload, error) {
	const hint = `send a command descriptor {"upload": {"name": ..., "size": ..., "mtime_ns": ...}} with the schema`
	if desc == nil || desc.GetType() != flight.DescriptorCMD {
		return nil, errdefs.WithHint(errdefs.ErrInvalidArgument, hint, "upload: the first message has no command descriptor")
	}
	var cmd UploadCommand
	if err := decode("upload", desc.GetCmd(), &cmd); err != nil {
		return nil, err
	}
	up := cmd.Upload
	switch {
	case up == nil:
		return nil, errdefs.WithHint(errdefs.ErrInvalidArgument, hint, "upload: the command has no \"upload\"")
	case strings.TrimSpace(up.Name) == "" || strings.ContainsRune(up.Name, 0):
		return nil, errdefs.WithHint(errdefs.ErrInvalidArgument, hint, "upload: the file has no name")
	case up.Size < 0 || up.MtimeNs < 0:
		return nil, errdefs.WithHint(errdefs.ErrInvalidArgument, hint, "upload of %s: negative size or mtime", up.Name)
	case up.Format != "" && up.Format != catalog.StagedCSV:
		return nil, errdefs.WithHint(errdefs.ErrInvalidArgument, `use "" (typed columns) or "csv" (a CSV file's text)`,
			"upload of %s: unknown format %q", up.Name, up.Format)
	}
	return up, nil
}

// write streams the batches of rdr into a new Arrow IPC file at path. size
// is what was written (and counted) even on error.
func (u *uploads) write(ctx context.Context, path string, rdr *flight.Reader) (rows, size int64, err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, 0, fmt.Errorf("staging the upload: %w", err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	cw := &countingWriter{w: bw, u: u}
	defer func() {
		if ferr := bw.Flush(); err == nil && ferr != nil {
			err = fmt.Errorf("staging the upload: %w", ferr)
		}
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("staging the upload: %w", cerr)
		}
		size = cw.n
	}()
	w, err := ipc.NewFileWriter(cw, ipc.WithSchema(rdr.Schema()), ipc.WithAllocator(memory.DefaultAllocator))
	if err != nil {
		return 0, cw.n, classifyWrite(err)
	}
	for rdr.Next() {
		rec := rdr.RecordBatch()
		if err := w.Write(rec); err != nil {
			w.Close()
			return 0, cw.n, classifyWrite(err)
		}
		rows += rec.NumRows()
	}
	if err := rdr.Err(); err != nil {
		w.Close()
		if ctx.Err() != nil {
			return 0, cw.n, ctx.Err()
		}
		return 0, cw.n, errdefs.New(errdefs.ErrInvalidArgument, "upload: bad record batch: %v", err)
	}
	if err := w.Close(); err != nil {
		return 0, cw.n, classifyWrite(err)
	}
	return rows, cw.n, nil
}

// classifyWrite keeps the class of an error of countingWriter through the
// IPC writer's wrapping.
func classifyWrite(err error) error {
	if errdefs.Class(err) != errdefs.ErrInternal {
		return err
	}
	var cls error
	for e := err; e != nil; e = errors.Unwrap(e) {
		if c := errdefs.Class(e); c != errdefs.ErrInternal {
			cls = e
		}
	}
	if cls != nil {
		return cls
	}
	return fmt.Errorf("staging the upload: %w", err)
}

// importTable imports uploads of the caller. Other sources (paths on the
// server's machine) are refused: a client imports its own files.
// ImportChecker is a catalog that checks an import before its sources
// are read (catalog.Local); a server over another catalog checks nothing
// ahead.
type ImportChecker interface {
	// CheckImport returns the error ImportTable would return for req
	// before it looks at its sources.
	CheckImport(ctx context.Context, req catalog.ImportRequest) error
}

func (s *Server) checkImport(ctx context.Context, b ImportBody) error {
	branch, err := parseBranch(b.Branch)
	if err != nil {
		return err
	}
	table, err := parseTable(b.Namespace, b.Table)
	if err != nil {
		return err
	}
	ic, ok := s.opts.Catalog.(ImportChecker)
	if !ok {
		return nil
	}
	return ic.CheckImport(ctx, catalog.ImportRequest{Branch: branch, Table: table,
		Mode: catalog.ImportMode(b.Mode), PartitionBy: b.PartitionBy})
}

func (s *Server) importTable(ctx context.Context, b ImportBody) (any, error) {
	var (
		ids []string
		bad error
	)
	for _, src := range b.Sources {
		id, ok := strings.CutPrefix(src, UploadSourcePrefix)
		if !ok || id == "" {
			if bad == nil {
				bad = errdefs.WithHint(errdefs.ErrInvalidArgument,
					"send the file with DoPut and name it upload:<id> (the CLI and lakehouse.Client send local files themselves)",
					"import source %q: a server imports only files its clients upload, not paths on its machine", src)
			}
			continue
		}
		ids = append(ids, id)
	}
	claimed, err := s.uploads.claim(PrincipalFrom(ctx).User, ids)
	defer s.uploads.remove(claimed)
	if bad != nil {
		return nil, bad
	}
	if err != nil {
		return nil, err
	}
	branch, err := parseBranch(b.Branch)
	if err != nil {
		return nil, err
	}
	table, err := parseTable(b.Namespace, b.Table)
	if err != nil {
		return nil, err
	}
	staged := make([]catalog.StagedSource, len(claimed))
	for i, u := range claimed {
		staged[i] = u.src
	}
	res, err := s.opts.Catalog.ImportTable(ctx, catalog.ImportRequest{
		Branch:      branch,
		Table:       table,
		Staged:      staged,
		Mode:        catalog.ImportMode(b.Mode),
		PartitionBy: b.PartitionBy,
		Commit:      s.author(ctx, b.Commit),
	})
	if err != nil {
		return nil, err
	}
	return ImportResult{Created: res.Created, Imported: nonNil(res.Imported), Skipped: nonNil(res.Skipped),
		Rows: res.Rows, Bytes: res.Bytes, Warnings: nonNil(res.Warnings), Commit: WireCommit(res.Commit)}, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// humanSize renders a byte count for a person.
func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
