package envcache

import (
	"archive/zip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// unpackWheel extracts a wheel into dir the way an installer lays it out in
// site-packages: everything at the root, the <name>.data/purelib and
// platlib trees merged into the root, <name>.data/scripts under bin/.
// Headers and data files are not installed.
func unpackWheel(wheel, dir string) error {
	zr, err := zip.OpenReader(wheel)
	if err != nil {
		return fmt.Errorf("open wheel %s: %w", filepath.Base(wheel), err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		name := f.Name
		if strings.HasSuffix(name, "/") {
			continue
		}
		if strings.Contains(name, "\\") || strings.HasPrefix(name, "/") {
			return fmt.Errorf("wheel %s: bad entry %q", filepath.Base(wheel), name)
		}
		target, ok := wheelTarget(name)
		if !ok {
			continue
		}
		clean := filepath.Clean(target)
		if clean == "." || strings.HasPrefix(clean, "..") {
			return fmt.Errorf("wheel %s: entry %q escapes the install folder", filepath.Base(wheel), name)
		}
		if err := extractFile(f, filepath.Join(dir, clean)); err != nil {
			return fmt.Errorf("wheel %s: %s: %w", filepath.Base(wheel), name, err)
		}
	}
	return nil
}

// wheelTarget maps a wheel entry to its path in the install folder.
func wheelTarget(name string) (string, bool) {
	first, rest, found := strings.Cut(name, "/")
	if !found || !strings.HasSuffix(first, ".data") {
		return name, true
	}
	scheme, file, ok := strings.Cut(rest, "/")
	if !ok {
		return "", false
	}
	switch scheme {
	case "purelib", "platlib":
		return file, true
	case "scripts":
		return filepath.Join("bin", file), true
	default: // headers, data
		return "", false
	}
}

func extractFile(f *zip.File, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	mode := os.FileMode(0o644)
	if f.Mode()&0o111 != 0 {
		mode = 0o755
	}
	rc, err := f.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, rc); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
