package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Profile is one entry of <data-dir>/profiles.json: the settings of a person
// (or a CI job) using the catalog.
//
//	{
//	  "default": {"active_branch": "alice.dev", "user": "alice", "namespace": "sales"}
//	}
type Profile struct {
	// ActiveBranch is the default ref of reads and target of writes.
	// Default: main.
	ActiveBranch catalog.BranchName `json:"active_branch"`
	// User is the author of commits. Default: $LAKEHOUSE_USER, else the OS user.
	User string `json:"user,omitempty"`
	// Namespace qualifies table names given without one. Default: "default".
	Namespace catalog.Namespace `json:"namespace"`
}

// Config keys of `lakehouse config`.
const (
	keyActiveBranch = "active_branch"
	keyNamespace    = "namespace"
	keyUser         = "user"
)

var configKeys = []string{keyActiveBranch, keyNamespace, keyUser}

func defaultProfile() Profile {
	return Profile{ActiveBranch: catalog.MainBranch, Namespace: catalog.DefaultNamespace}
}

// checkProfileName validates a --profile value.
func checkProfileName(s string) error {
	if s == "" || len(s) > 64 {
		return fmt.Errorf("invalid profile name %q: use 1 to 64 letters, digits, '_', '-' or '.'", s)
	}
	for _, r := range s {
		if !(r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) || r == '_' || r == '-' || r == '.') {
			return fmt.Errorf("invalid profile name %q: use letters, digits, '_', '-' or '.'", s)
		}
	}
	return nil
}

// readProfiles reads the profile file; a missing file is an empty set.
func readProfiles(path string) (map[string]Profile, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]Profile{}, nil
	}
	if err != nil {
		return nil, fileError("read", path, err)
	}
	var m map[string]Profile
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, errdefs.WithHint(errdefs.ErrFailedPrecondition, "fix it or remove it to start from the defaults",
			"profile file %s is not valid JSON: %v", path, err)
	}
	if m == nil {
		m = map[string]Profile{}
	}
	return m, nil
}

// Profile returns the active profile, with defaults filled in and every
// value validated.
func (e *Env) Profile() (*Profile, error) {
	if e.profile != nil {
		return e.profile, nil
	}
	all, err := readProfiles(e.ProfilesPath())
	if err != nil {
		return nil, err
	}
	p, ok := all[e.ProfileName]
	if !ok {
		p = defaultProfile()
	}
	if p.ActiveBranch == "" {
		p.ActiveBranch = catalog.MainBranch
	}
	if p.Namespace == "" {
		p.Namespace = catalog.DefaultNamespace
	}
	fix := func(key string, err error) error {
		return errdefs.WithHint(errdefs.ErrFailedPrecondition,
			fmt.Sprintf("set it with `lakehouse --profile %s config set %s VALUE`", e.ProfileName, key),
			"profile %s in %s has an invalid %s: %v", e.ProfileName, e.ProfilesPath(), key, unhint(err))
	}
	if _, err := catalog.ParseBranchName(string(p.ActiveBranch)); err != nil {
		return nil, fix(keyActiveBranch, err)
	}
	if _, err := catalog.ParseNamespace(string(p.Namespace)); err != nil {
		return nil, fix(keyNamespace, err)
	}
	if err := checkUser(p.User); p.User != "" && err != nil {
		return nil, fix(keyUser, err)
	}
	e.profile = &p
	return e.profile, nil
}

// saveProfile writes p as the active profile, keeping the others. The file
// is replaced atomically (temp file in the same directory, then rename), so
// a reader never sees half of it.
func (e *Env) saveProfile(p Profile) error {
	all, err := readProfiles(e.ProfilesPath())
	if err != nil {
		return err
	}
	all[e.ProfileName] = p
	b, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(e.ProfilesPath(), append(b, '\n')); err != nil {
		return err
	}
	e.profile = &p
	return nil
}

func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fileError("create", dir, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fileError("write", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fileError("write", path, err)
	}
	return nil
}

// fileError classifies a filesystem error for the exit code.
func fileError(verb, path string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return errdefs.WithHint(errdefs.ErrPermissionDenied, "choose another data directory with --data-dir or "+envDataDir,
			"cannot %s %s: permission denied", verb, path)
	}
	return fmt.Errorf("cannot %s %s: %w", verb, path, err)
}

// checkUser validates a user (commit author) name.
func checkUser(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("user is empty")
	}
	if len(s) > catalog.MaxNameLen {
		return fmt.Errorf("user is %d characters long; the limit is %d", len(s), catalog.MaxNameLen)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("user %q contains a control character", s)
		}
	}
	return nil
}

// setConfig validates value for key and stores it in p.
func setConfig(p *Profile, key, value string) error {
	switch key {
	case keyActiveBranch:
		b, err := catalog.ParseBranchName(value)
		if err != nil {
			return err
		}
		p.ActiveBranch = b
	case keyNamespace:
		ns, err := catalog.ParseNamespace(value)
		if err != nil {
			return err
		}
		p.Namespace = ns
	case keyUser:
		if err := checkUser(value); err != nil {
			return errdefs.New(errdefs.ErrInvalidArgument, "invalid user: %v", err)
		}
		p.User = value
	default:
		return unknownKey(key)
	}
	return nil
}

func unknownKey(key string) error {
	return errdefs.WithHint(errdefs.ErrInvalidArgument, "keys are "+strings.Join(configKeys, ", "),
		"unknown config key %q", key)
}

func isConfigKey(key string) bool { return slices.Contains(configKeys, key) }

// unhint returns err's message without its hint.
func unhint(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "; "); i >= 0 {
		return msg[:i]
	}
	return msg
}
