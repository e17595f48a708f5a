package envcache

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/lakehouse-dev/lakehouse/python"
)

// The lakehouse SDK (python/lakehouse, embedded in the binary) is installed
// like any other distribution: once per machine and interpreter, into a
// content-addressed, read-only folder, pkgs/<hash>/ with lakehouse/ and a
// lakehouse-<version>.dist-info/. Every environment assembled with runner
// requirements (Config.RunnerRequirements not empty) lists it first, so
// functions import the real SDK (lakehouse.expectations) on every
// launcher, and it shadows an unrelated "lakehouse" from the index.

// SDKName is the SDK's distribution name in an environment's package list.
const SDKName = "lakehouse"

// sdkURL marks the SDK's Package.URL: it comes from the binary, not an index.
const sdkURL = "embedded:lakehouse"

var sdkVersionRE = regexp.MustCompile(`(?m)^__version__\s*=\s*["']([^"']+)["']`)

type sdkFile struct {
	name string // slash-separated, relative to the SDK root (lakehouse/…)
	data []byte
}

var sdkOnce = sync.OnceValues(func() (sdkInfo, error) { return readSDK(python.SDK()) })

type sdkInfo struct {
	files   []sdkFile
	version string
	sha256  string // of the files' names and contents
}

func readSDK(fsys fs.FS) (sdkInfo, error) {
	var s sdkInfo
	err := fs.WalkDir(fsys, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		s.files = append(s.files, sdkFile{p, b})
		return nil
	})
	if err != nil {
		return s, err
	}
	sort.Slice(s.files, func(i, j int) bool { return s.files[i].name < s.files[j].name })
	h := sha256.New()
	for _, f := range s.files {
		fmt.Fprintf(h, "%s\x00%d\x00", f.name, len(f.data))
		h.Write(f.data)
		if f.name == "lakehouse/__init__.py" {
			if m := sdkVersionRE.FindSubmatch(f.data); m != nil {
				s.version = string(m[1])
			}
		}
	}
	if len(s.files) == 0 || s.version == "" {
		return s, fmt.Errorf("envcache: the embedded lakehouse SDK has no lakehouse/__init__.py with __version__")
	}
	s.sha256 = hex.EncodeToString(h.Sum(nil))
	return s, nil
}

// sdkPackage describes the embedded SDK installed for cacheTag.
func sdkPackage(s sdkInfo, cacheTag string) *Package {
	d := Distribution{Name: SDKName, Version: s.version, URL: sdkURL, SHA256: s.sha256}
	return &Package{Hash: packageHash(d, cacheTag), Name: SDKName, Version: s.version,
		Filename: "lakehouse-" + s.version + "-embedded", URL: sdkURL, SHA256: s.sha256, CacheTag: cacheTag}
}

// installSDK makes sure the embedded SDK is installed for in.
func (c *Cache) installSDK(ctx context.Context, in *Interpreter) (*Package, error) {
	s, err := sdkOnce()
	if err != nil {
		return nil, err
	}
	return c.installOnce(ctx, in, sdkPackage(s, in.CacheTag), func(_, root string) error {
		return writeSDK(s, root)
	})
}

// writeSDK lays the SDK out in root as an installer would in site-packages.
func writeSDK(s sdkInfo, root string) error {
	distInfo := "lakehouse-" + s.version + ".dist-info"
	files := append([]sdkFile{
		{distInfo + "/METADATA", []byte("Metadata-Version: 2.1\nName: lakehouse\nVersion: " + s.version +
			"\nSummary: lakehouse pipeline SDK (embedded in the lakehouse binary)\n")},
		{distInfo + "/INSTALLER", []byte("lakehouse\n")},
	}, s.files...)
	// A RECORD as in a wheel, so `env verify` checks the SDK like any
	// distribution.
	var record strings.Builder
	for _, f := range files {
		sum := sha256.Sum256(f.data)
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", f.name, base64.RawURLEncoding.EncodeToString(sum[:]), len(f.data))
	}
	record.WriteString(distInfo + "/RECORD,,\n")
	files = append(files, sdkFile{distInfo + "/RECORD", []byte(record.String())})
	for _, f := range files {
		dst := filepath.Join(root, filepath.FromSlash(f.name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, f.data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// isCurrentSDK reports whether p is the embedded SDK of this binary.
func isCurrentSDK(p *Package) bool {
	s, err := sdkOnce()
	return err == nil && p.URL == sdkURL && p.SHA256 == s.sha256
}
