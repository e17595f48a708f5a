package envcache

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Distribution is one locked package of a resolution.
type Distribution struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// URL is where the file comes from: https://…, or file:///… for a
	// local wheel folder.
	URL string `json:"url"`
	// SHA256 is the file's hash as the index reported it ("" if none).
	SHA256 string `json:"sha256,omitempty"`
}

// Filename is the last element of the URL, e.g. six-1.17.0-py2.py3-none-any.whl.
func (d Distribution) Filename() string {
	u := d.URL
	if i := strings.IndexAny(u, "#?"); i >= 0 {
		u = u[:i]
	}
	return path.Base(u)
}

// IsWheel reports whether the distribution is a built wheel.
func (d Distribution) IsWheel() bool { return strings.HasSuffix(d.Filename(), ".whl") }

// Resolution is a spec locked for one interpreter and index.
type Resolution struct {
	Key           string         `json:"key"`
	Spec          Spec           `json:"spec"`
	Python        string         `json:"python_version"`
	Platform      string         `json:"platform"`
	Index         IndexOptions   `json:"index"`
	Resolver      string         `json:"resolver"`
	Created       time.Time      `json:"created"`
	Distributions []Distribution `json:"distributions"`
}

// IndexOptions say where packages come from.
type IndexOptions struct {
	// IndexURL is the simple index (default PIP_INDEX_URL, else PyPI).
	IndexURL string `json:"index_url,omitempty"`
	// FindLinks are local folders (or pages) of wheels and sdists.
	FindLinks []string `json:"find_links,omitempty"`
	// NoIndex uses FindLinks only (air-gapped machines).
	NoIndex bool `json:"no_index,omitempty"`
}

func (o IndexOptions) pipArgs() []string {
	var args []string
	if o.NoIndex {
		args = append(args, "--no-index")
	} else if o.IndexURL != "" {
		args = append(args, "--index-url", o.IndexURL)
	}
	for _, f := range o.FindLinks {
		args = append(args, "--find-links", f)
	}
	return args
}

// resolutionKey identifies a resolution: the spec as sent to the resolver,
// the interpreter version and platform, and the index.
func resolutionKey(reqs []string, in *Interpreter, idx IndexOptions) string {
	return hashJSON(struct {
		Reqs     []string
		Version  string
		Platform string
		Index    IndexOptions
	}{reqs, in.Version, in.Platform, idx})[:32]
}

// pipReport is the part of pip's installation report (pip ≥ 22.2) we read.
type pipReport struct {
	Install []struct {
		Metadata struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		} `json:"metadata"`
		DownloadInfo struct {
			URL         string `json:"url"`
			ArchiveInfo *struct {
				Hash   string            `json:"hash"`
				Hashes map[string]string `json:"hashes"`
			} `json:"archive_info"`
			DirInfo *struct{} `json:"dir_info"`
		} `json:"download_info"`
	} `json:"install"`
}

// resolvePip runs the target interpreter's pip resolver without installing
// anything and returns the locked distributions.
func resolvePip(ctx context.Context, in *Interpreter, reqs []string, idx IndexOptions) ([]Distribution, error) {
	report, err := os.CreateTemp("", "lakehouse-pip-report-*.json")
	if err != nil {
		return nil, err
	}
	report.Close()
	defer os.Remove(report.Name())
	args := []string{"-m", "pip", "install", "--dry-run", "--ignore-installed",
		"--disable-pip-version-check", "--no-input", "--report", report.Name()}
	args = append(args, idx.pipArgs()...)
	args = append(args, "--")
	args = append(args, reqs...)
	cmd := exec.CommandContext(ctx, in.Path, args...)
	cmd.Env = append(os.Environ(), "PIP_DISABLE_PIP_VERSION_CHECK=1", "PYTHONNOUSERSITE=1")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "cannot resolve %s for Python %s: %s",
			strings.Join(reqs, ", "), in.Version, pipReason(out.String()))
	}
	b, err := os.ReadFile(report.Name())
	if err != nil {
		return nil, err
	}
	var r pipReport
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("read pip report: %w", err)
	}
	var dists []Distribution
	for _, it := range r.Install {
		d := Distribution{Name: normalizeName(it.Metadata.Name), Version: it.Metadata.Version, URL: it.DownloadInfo.URL}
		if ai := it.DownloadInfo.ArchiveInfo; ai != nil {
			d.SHA256 = ai.Hashes["sha256"]
			if d.SHA256 == "" {
				d.SHA256, _ = strings.CutPrefix(ai.Hash, "sha256=")
			}
		}
		if it.DownloadInfo.DirInfo != nil || d.URL == "" {
			return nil, errdefs.New(errdefs.ErrInvalidArgument,
				"requirement %s resolves to a local folder (%s); use a released version or a wheel", d.Name, d.URL)
		}
		dists = append(dists, d)
	}
	sort.Slice(dists, func(i, j int) bool { return dists[i].Name < dists[j].Name })
	return dists, nil
}

var pipNoise = regexp.MustCompile(`(?i)^(ERROR: ResolutionImpossible|To fix this you could try|\d+\. |\s*$|Looking in|Collecting|Downloading|Obtaining|Using cached|Processing|WARNING: )`)

// pipReason turns pip's output into one readable paragraph: its ERROR lines
// and the conflict explanation, without the progress noise.
func pipReason(out string) string {
	var keep []string
	inConflict := false
	for _, line := range strings.Split(out, "\n") {
		t := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(t, "The conflict is caused by:"):
			inConflict = true
			keep = append(keep, "The conflict is caused by:")
			continue
		case inConflict && t == "":
			inConflict = false
			continue
		case inConflict && !strings.HasPrefix(t, "To fix"):
			keep = append(keep, t+";")
			continue
		}
		inConflict = false
		if msg, ok := strings.CutPrefix(t, "ERROR: "); ok && !pipNoise.MatchString(t) {
			keep = append(keep, strings.TrimSuffix(msg, ".")+".")
		}
	}
	if len(keep) == 0 {
		lines := strings.Split(strings.TrimSpace(out), "\n")
		return strings.TrimSpace(lines[len(lines)-1])
	}
	return strings.TrimSuffix(strings.Join(keep, " "), ";")
}

// readResolution loads a cached resolution, or returns nil.
func readResolution(dir, key string) *Resolution {
	b, err := os.ReadFile(filepath.Join(dir, key+".json"))
	if err != nil {
		return nil
	}
	var r Resolution
	if json.Unmarshal(b, &r) != nil || r.Key != key {
		return nil
	}
	return &r
}

// writeResolution stores r atomically.
func writeResolution(dir string, r *Resolution) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, r.Key+".json"), b)
}

func writeFileAtomic(name string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-"+filepath.Base(name)+"-*")
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), name); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}
