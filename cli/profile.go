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
	"github.com/lakehouse-dev/lakehouse/flight"
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
	// Addr is the server the commands talk to (see --addr); empty for
	// the embedded catalog of the data dir.
	Addr string `json:"addr,omitempty"`
	// APIKey is sent to the server (see $LAKEHOUSE_API_KEY).
	APIKey string `json:"api_key,omitempty"`
}

// Config keys of `lakehouse config`.
const (
	keyActiveBranch = "active_branch"
	keyNamespace    = "namespace"
	keyUser         = "user"
	keyAddr         = "addr"
	keyAPIKey       = "api_key"
)

var configKeys = []string{keyActiveBranch, keyNamespace, keyUser, keyAddr, keyAPIKey}

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
	st, err := e.stageProfile(p)
	if err != nil {
		return err
	}
	return st.commit()
}

// stagedProfile is a profile change written and synced under a temporary
// name, so that all that is left to do is a rename: a command that must
// also change the catalog stages the profile first, changes the catalog,
// and then commits (or, if the catalog change fails, aborts).
type stagedProfile struct {
	e    *Env
	p    Profile
	file *stagedFile
}

// stageProfile writes the profile file with p as the active profile to a
// temporary file beside it.
func (e *Env) stageProfile(p Profile) (*stagedProfile, error) {
	all, err := readProfiles(e.ProfilesPath())
	if err != nil {
		return nil, err
	}
	all[e.ProfileName] = p
	b, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		return nil, err
	}
	f, err := stageFile(e.ProfilesPath(), append(b, '\n'))
	if err != nil {
		return nil, err
	}
	return &stagedProfile{e: e, p: p, file: f}, nil
}

// commit puts the staged profile file in place.
func (s *stagedProfile) commit() error {
	if err := s.file.commit(); err != nil {
		return err
	}
	s.e.profile = &s.p
	return nil
}

// abort removes the staged file; after commit it does nothing.
func (s *stagedProfile) abort() { s.file.abort() }

func writeFileAtomic(path string, data []byte) error {
	f, err := stageFile(path, data)
	if err != nil {
		return err
	}
	return f.commit()
}

// stagedFile is data written and synced under a temporary name in the
// directory of path, waiting to replace path.
type stagedFile struct {
	tmp, path string
	done      bool
}

func stageFile(path string, data []byte) (*stagedFile, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fileError("create", dir, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return nil, fileError("write", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return nil, fileError("write", path, err)
	}
	return &stagedFile{tmp: tmp, path: path}, nil
}

// renameFile is os.Rename; tests replace it to fail a commit.
var renameFile = os.Rename

func (s *stagedFile) commit() error {
	if s.done {
		return nil
	}
	if err := renameFile(s.tmp, s.path); err != nil {
		s.abort()
		return fileError("write", s.path, err)
	}
	s.done = true
	return nil
}

func (s *stagedFile) abort() {
	if !s.done {
		os.Remove(s.tmp)
		s.done = true
	}
}

// fileError classifies a filesystem error for the exit code.
func fileError(verb, path string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return errdefs.WithHint(errdefs.ErrPermissionDenied, "choose another data directory with --data-dir or "+envDataDir,
			"cannot %s %s: permission denied", verb, path)
	}
	return fmt.Errorf("cannot %s %s: %w", verb, path, err)
}

// checkUser validates a user (commit author) name. A user names branches
// (`<user>.<name>`, and a run's `<user>.run-<id>`), so it follows the
// rules of a branch name's user part: letters, digits, '_' and '-', not
// starting with '-', no dots.
func checkUser(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("user is empty")
	}
	const rule = "use letters, digits, '_' and '-' only (it is the first part of branch names such as alice.dev)"
	if strings.Contains(s, ".") {
		return fmt.Errorf("user %q contains '.'; %s", s, rule)
	}
	if _, err := catalog.ParseBranchName(s + ".dev"); err != nil {
		why := unhint(err)
		if i := strings.Index(why, ": it "); i >= 0 {
			why = why[i+len(": it "):]
		}
		why, _, _ = strings.Cut(why, ";")
		return fmt.Errorf("user %q %s; %s", s, why, rule)
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
	case keyAddr:
		if value != "" {
			if _, _, err := flight.ParseAddr(value); err != nil {
				return err
			}
		}
		p.Addr = value
	case keyAPIKey:
		if strings.ContainsAny(value, " \t\r\n") {
			return errdefs.New(errdefs.ErrInvalidArgument, "invalid api_key: it contains white space")
		}
		p.APIKey = value
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
