package cli

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/runtime/runrec"
)

// A run against a server sends the project folder as a gzip'd tar of the
// files a run ships (runrec.IsProjectFile: code and small text files, no
// hidden folders); links to files go as the files. The server unpacks it
// into a scratch folder within its projectLimits: regular files and
// folders only, every name relative and inside the folder. The client
// checks the ceilings a run can carry; the server its own limits.

const projectHint = "keep data files and environments out of the project folder"

// projectLimits bound the projects a server takes with runs (`serve
// --max-project-bytes`, `--max-project-unpacked`).
type projectLimits struct {
	// bytes bounds the gzip'd tar, unpacked the bytes of its files.
	bytes, unpacked int64
}

var defaultProjectLimits = projectLimits{bytes: flight.MaxProjectBytes, unpacked: flight.MaxProjectUnpacked}

// packProject tars the project files of dir.
func packProject(dir string) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	var total int64
	files := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		if !runrec.IsProjectFile(p, d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		files++
		if files > flight.MaxProjectFiles {
			return errdefs.WithHint(errdefs.ErrInvalidArgument, projectHint,
				"the project folder %s holds more than %d files and folders", dir, flight.MaxProjectFiles)
		}
		name := filepath.ToSlash(rel)
		if d.IsDir() {
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755})
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		total += int64(len(b))
		if total > flight.MaxProjectUnpackedCeiling {
			return errdefs.WithHint(errdefs.ErrInvalidArgument, projectHint,
				"the project folder %s holds more than %d MiB of project files", dir, flight.MaxProjectUnpackedCeiling>>20)
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(b))}); err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		return nil, err
	}
	if buf.Len() > flight.MaxProjectBytesCeiling {
		return nil, errdefs.WithHint(errdefs.ErrInvalidArgument, projectHint,
			"the project folder %s is %d MiB compressed, more than a run may send (%d MiB)", dir, buf.Len()>>20, flight.MaxProjectBytesCeiling>>20)
	}
	return buf.Bytes(), nil
}

// badProject is an error about a project a client sent.
func badProject(format string, args ...any) error {
	return errdefs.WithHint(errdefs.ErrInvalidArgument, "send the project folder as a gzip'd tar of its files (lakehouse run does)",
		"the project sent with the run is refused: "+format, args...)
}

// projectTooBig is the error about a project beyond a server's limits.
func projectTooBig(format string, args ...any) error {
	return errdefs.WithHint(errdefs.ErrInvalidArgument,
		projectHint+" (the server's limits are `serve --max-project-bytes` and `--max-project-unpacked`)",
		"the project sent with the run is refused: "+format, args...)
}

// unpackProject unpacks a project sent with a run into a new folder under
// scratch and returns it. Nothing is left behind when it fails.
func unpackProject(data []byte, scratch string, lim projectLimits) (dir string, err error) {
	switch {
	case len(data) == 0:
		return "", badProject("it is empty")
	case int64(len(data)) > lim.bytes:
		return "", projectTooBig("it is %s compressed; the limit is %s", humanBytes(int64(len(data))), humanBytes(lim.bytes))
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return "", badProject("not gzip data: %v", err)
	}
	tmp, err := os.MkdirTemp(scratch, "lakehouse-project-")
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	dir = tmp
	tr := tar.NewReader(zr)
	var total int64
	for n := 0; ; n++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return dir, nil
		}
		if err != nil {
			return "", badProject("a damaged tar: %v", err)
		}
		if n >= flight.MaxProjectFiles {
			return "", badProject("more than %d files and folders", flight.MaxProjectFiles)
		}
		name, err := projectEntryName(h.Name)
		if err != nil {
			return "", err
		}
		dst := filepath.Join(dir, filepath.FromSlash(name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return "", err
			}
		case tar.TypeReg:
			if h.Size < 0 {
				return "", badProject("entry %q has a negative size", h.Name)
			}
			if total+h.Size > lim.unpacked {
				return "", projectTooBig("more than %s of files once unpacked", humanBytes(lim.unpacked))
			}
			total += h.Size
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return "", err
			}
			if err := writeEntry(dst, tr, h.Size); err != nil {
				return "", err
			}
		default:
			return "", badProject("%s is a link or device; a project holds regular files and folders only", h.Name)
		}
	}
}

// projectEntryName checks a tar entry's name: relative, inside the
// folder, clean.
func projectEntryName(name string) (string, error) {
	clean := strings.TrimSuffix(name, "/")
	switch {
	case clean == "" || clean == ".":
		return "", badProject("an entry has no name")
	case strings.HasPrefix(clean, "/") || strings.Contains(clean, "\\") || strings.Contains(clean, "\x00"):
		return "", badProject("entry %q is not a relative path", name)
	}
	for _, part := range strings.Split(clean, "/") {
		if part == ".." {
			return "", badProject("entry %q leaves the project folder", name)
		}
	}
	if c := path.Clean(clean); c != clean {
		return "", badProject("entry %q is not a clean path (%s)", name, c)
	}
	return clean, nil
}

func writeEntry(dst string, r io.Reader, size int64) error {
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return badProject("entry %s comes twice", filepath.Base(dst))
		}
		return err
	}
	n, err := io.Copy(f, io.LimitReader(r, size))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != size {
		err = badProject("entry %s is cut short", filepath.Base(dst))
	}
	return err
}
