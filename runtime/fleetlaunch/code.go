package fleetlaunch

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// MaxCodeBytes bounds a run's code folder, compressed, as carried in
// every task.
const MaxCodeBytes = 32 << 20

// packCode tars and gzips the regular files and folders of dir.
func packCode(dir string) (Code, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() && !info.IsDir() {
			return nil // sockets, links: not code
		}
		hdr := &tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, Size: info.Size(), Typeflag: tar.TypeReg}
		if info.IsDir() {
			hdr = &tar.Header{Name: filepath.ToSlash(rel) + "/", Mode: 0o755, Typeflag: tar.TypeDir}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.IsDir() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := io.Copy(tw, io.LimitReader(f, info.Size())); err != nil {
			return err
		}
		if buf.Len() > MaxCodeBytes {
			return errdefs.WithHint(errdefs.ErrFailedPrecondition, "keep data files out of the project's code folder",
				"the code folder %s is larger than %d MiB compressed: too large to send to workers", dir, MaxCodeBytes>>20)
		}
		return nil
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		return Code{}, fmt.Errorf("packing the code folder %s: %w", dir, err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return Code{Hash: hex.EncodeToString(sum[:]), Tar: buf.Bytes()}, nil
}

// unpackCode writes c into dir, which must not exist: it is filled in a
// temporary folder renamed into place.
func unpackCode(c Code, dir string) error {
	sum := sha256.Sum256(c.Tar)
	if hex.EncodeToString(sum[:]) != c.Hash {
		return errdefs.New(errdefs.ErrInvalidArgument, "malformed task: the code does not match its hash")
	}
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	if err := extract(c.Tar, tmp); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	return nil
}

func extract(b []byte, dir string) error {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return errdefs.New(errdefs.ErrInvalidArgument, "malformed task: code: %v", err)
	}
	tr := tar.NewReader(zr)
	var total int64
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return errdefs.New(errdefs.ErrInvalidArgument, "malformed task: code: %v", err)
		}
		name := filepath.Clean(filepath.FromSlash(hdr.Name))
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return errdefs.New(errdefs.ErrInvalidArgument, "malformed task: code path %q leaves its folder", hdr.Name)
		}
		p := filepath.Join(dir, name)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if total += hdr.Size; total > 8*MaxCodeBytes {
				return errdefs.New(errdefs.ErrInvalidArgument, "malformed task: code larger than %d MiB", 8*MaxCodeBytes>>20)
			}
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, io.LimitReader(tr, hdr.Size))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		default:
			return errdefs.New(errdefs.ErrInvalidArgument, "malformed task: code entry %q is not a file or folder", hdr.Name)
		}
	}
}
