package planner

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"go.yaml.in/yaml/v3"
)

// ConfigFile is the project file at the root of a pipeline folder.
const ConfigFile = "lakehouse.yml"

// maxFileSize bounds every project file the planner reads.
const maxFileSize = 4 << 20

// Config is lakehouse.yml:
//
//	project:
//	  name: euro_report
//	defaults:
//	  python: "3.11"            # default interpreter of Python models
//	  namespace: sales          # where models are written, and unqualified tables read
//	  pip: {pandas: "2.2.3"}    # merged under each model's pip
//	  timeout: 30m              # of each model (default 1h); seconds or a duration
//	parameters:
//	  min_usd: {type: float, default: 0, required: false, description: "lower bound"}
type Config struct {
	Name     string
	Defaults Defaults
	// Params are the declared parameters, in file order.
	Params []*ParamSpec
}

// Defaults apply to every model that does not set its own.
type Defaults struct {
	Python     string
	PythonLine int
	Namespace  string
	NSLine     int
	Pip        map[string]string
	PipLine    int
	// TimeoutSecs bounds each model without @lakehouse.resources(timeout=)
	// (0: DefaultTimeout).
	TimeoutSecs int64
}

// DefaultTimeout is a model's timeout when neither the model nor
// lakehouse.yml sets one.
const DefaultTimeout = 3600 // seconds

// ParamSpec is a declared parameter.
type ParamSpec struct {
	Name        string
	Type        ParamType
	Default     any // nil when there is none
	Required    bool
	Description string
	Line        int
}

// Project is a pipeline folder: its config and its model files.
type Project struct {
	Dir    string
	Config Config
	// PyFiles and SQLFiles are file names relative to Dir, sorted.
	PyFiles, SQLFiles []string
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// LoadProject reads a project folder: lakehouse.yml and the names of its
// *.py and *.sql files (not those of subfolders). Problems in lakehouse.yml
// come back as diagnostics; the error is for a folder that cannot be read
// (ErrNotFound when it or its lakehouse.yml does not exist).
func LoadProject(dir string) (*Project, []Diagnostic, error) {
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, errdefs.WithHint(errdefs.ErrNotFound, "create one with `lakehouse init "+dir+"`",
			"pipeline folder %s does not exist", dir)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading pipeline folder %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, nil, errdefs.New(errdefs.ErrInvalidArgument, "%s is not a folder; -p names a pipeline folder", dir)
	}
	b, err := readLimited(filepath.Join(dir, ConfigFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, errdefs.WithHint(errdefs.ErrNotFound, "create one with `lakehouse init "+dir+"`",
			"%s has no %s, so it is not a pipeline project", dir, ConfigFile)
	}
	if err != nil {
		return nil, nil, err
	}
	cfg, ds := ParseConfig(b)
	if cfg.Name == "" {
		cfg.Name = filepath.Base(mustAbs(dir))
	}
	p := &Project{Dir: dir, Config: *cfg}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("reading pipeline folder %s: %w", dir, err)
	}
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		switch filepath.Ext(e.Name()) {
		case ".py":
			p.PyFiles = append(p.PyFiles, e.Name())
		case ".sql":
			p.SQLFiles = append(p.SQLFiles, e.Name())
		}
	}
	sort.Strings(p.PyFiles)
	sort.Strings(p.SQLFiles)
	return p, ds, nil
}

func mustAbs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > maxFileSize {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "%s is %d bytes; project files are limited to %d", path, st.Size(), maxFileSize)
	}
	return os.ReadFile(path)
}

// ParseConfig parses lakehouse.yml. It always returns a Config (best
// effort) and lists every problem with its line.
func ParseConfig(data []byte) (*Config, []Diagnostic) {
	cfg := &Config{}
	var ds diags
	if !utf8.Valid(data) {
		// The YAML parser would read a UTF-16 file (by its byte order
		// mark) and number its lines its own way.
		line := bytes.Count(data[:utf8ValidPrefix(data)], []byte("\n")) + 1
		ds.add(ConfigFile, line, "the file is not UTF-8 text: save it as UTF-8")
		return cfg, ds
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		ds.add(ConfigFile, yamlErrLine(err), "invalid YAML: %s", yamlErrMsg(err))
		return cfg, ds
	}
	if len(root.Content) == 0 {
		return cfg, ds // empty file: every default
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		ds.add(ConfigFile, doc.Line, "the file must be a mapping with project, defaults and parameters")
		return cfg, ds
	}
	eachKey(doc, &ds, []string{"project", "defaults", "parameters"}, func(key string, k, v *yaml.Node) {
		switch key {
		case "project":
			if !isMap(v, &ds, "project") {
				return
			}
			eachKey(v, &ds, []string{"name", "description"}, func(key string, k, v *yaml.Node) {
				s, ok := scalarString(v, &ds, "project."+key)
				if !ok {
					return
				}
				if key == "name" {
					if !identRE.MatchString(s) {
						ds.add(ConfigFile, v.Line, "project.name %q: use letters, digits and '_', starting with a letter or '_'", s)
						return
					}
					cfg.Name = s
				}
			})
		case "defaults":
			if !isMap(v, &ds, "defaults") {
				return
			}
			eachKey(v, &ds, []string{"python", "namespace", "pip", "timeout"}, func(key string, k, v *yaml.Node) {
				switch key {
				case "python":
					if s, ok := scalarString(v, &ds, "defaults.python"); ok {
						cfg.Defaults.Python, cfg.Defaults.PythonLine = s, v.Line
					}
				case "namespace":
					if s, ok := scalarString(v, &ds, "defaults.namespace"); ok {
						cfg.Defaults.Namespace, cfg.Defaults.NSLine = s, v.Line
					}
				case "timeout":
					s, ok := scalarString(v, &ds, "defaults.timeout")
					if !ok {
						return
					}
					raw, _ := json.Marshal(s)
					if v.Tag == "!!int" || v.Tag == "!!float" {
						raw = []byte(s)
					}
					n, err := parseTimeout(raw)
					if err != nil {
						ds.add(ConfigFile, v.Line, "defaults.timeout %q: %v", s, err)
						return
					}
					cfg.Defaults.TimeoutSecs = n
				case "pip":
					if !isMap(v, &ds, "defaults.pip") {
						return
					}
					cfg.Defaults.Pip, cfg.Defaults.PipLine = map[string]string{}, v.Line
					for i := 0; i+1 < len(v.Content); i += 2 {
						pk, pv := v.Content[i], v.Content[i+1]
						if pv.Kind == yaml.ScalarNode && pv.Tag == "!!null" {
							cfg.Defaults.Pip[pk.Value] = ""
							continue
						}
						if s, ok := scalarString(pv, &ds, "defaults.pip."+pk.Value); ok {
							cfg.Defaults.Pip[pk.Value] = s
						}
					}
				}
			})
		case "parameters":
			if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
				return
			}
			if !isMap(v, &ds, "parameters") {
				return
			}
			for i := 0; i+1 < len(v.Content); i += 2 {
				if p := parseParamSpec(v.Content[i], v.Content[i+1], &ds); p != nil {
					cfg.Params = append(cfg.Params, p)
				}
			}
		}
	})
	return cfg, ds
}

func parseParamSpec(k, v *yaml.Node, ds *diags) *ParamSpec {
	name := k.Value
	if !identRE.MatchString(name) {
		ds.add(ConfigFile, k.Line, "parameter name %q: use letters, digits and '_', starting with a letter or '_'", name)
		return nil
	}
	if !isMap(v, ds, "parameters."+name) {
		return nil
	}
	p := &ParamSpec{Name: name, Line: k.Line}
	var defNode *yaml.Node
	eachKey(v, ds, []string{"type", "default", "required", "description"}, func(key string, k, v *yaml.Node) {
		switch key {
		case "type":
			s, ok := scalarString(v, ds, "parameters."+name+".type")
			if !ok {
				return
			}
			t, err := parseParamType(s)
			if err != nil {
				ds.add(ConfigFile, v.Line, "parameter %s: %v", name, err)
				return
			}
			p.Type = t
		case "default":
			defNode = v
		case "required":
			if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" {
				ds.add(ConfigFile, v.Line, "parameters.%s.required must be true or false", name)
				return
			}
			p.Required = v.Value == "true" || v.Value == "True" || v.Value == "TRUE"
		case "description":
			if s, ok := scalarString(v, ds, "parameters."+name+".description"); ok {
				p.Description = s
			}
		}
	})
	if p.Type == "" {
		if len(v.Content) > 0 && !hasKey(v, "type") {
			ds.add(ConfigFile, k.Line, "parameter %s has no type; add type: int, float, str or bool", name)
		}
		return nil
	}
	if defNode != nil && !(defNode.Kind == yaml.ScalarNode && defNode.Tag == "!!null") {
		if defNode.Kind != yaml.ScalarNode {
			ds.add(ConfigFile, defNode.Line, "parameter %s: the default must be a single %s value", name, p.Type)
			return p
		}
		val, err := p.Type.parseYAML(defNode)
		if err != nil {
			ds.add(ConfigFile, defNode.Line, "parameter %s: default %s", name, err)
			return p
		}
		p.Default = val
	}
	return p
}

func hasKey(m *yaml.Node, key string) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return true
		}
	}
	return false
}

// eachKey calls fn for every key of mapping m, reporting unknown and
// repeated keys.
func eachKey(m *yaml.Node, ds *diags, known []string, fn func(key string, k, v *yaml.Node)) {
	seen := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		key := k.Value
		if k.Kind != yaml.ScalarNode {
			ds.add(ConfigFile, k.Line, "keys must be plain names")
			continue
		}
		if !contains(known, key) {
			ds.add(ConfigFile, k.Line, "unknown key %q%s; known keys here: %s", key, didYouMean(key, known), strings.Join(known, ", "))
			continue
		}
		if seen[key] {
			ds.add(ConfigFile, k.Line, "key %q appears twice", key)
			continue
		}
		seen[key] = true
		fn(key, k, v)
	}
}

func isMap(v *yaml.Node, ds *diags, what string) bool {
	if v.Kind != yaml.MappingNode {
		ds.add(ConfigFile, v.Line, "%s must be a mapping (key: value lines)", what)
		return false
	}
	return true
}

// scalarString returns a scalar's text as written: `python: 3.10` is
// "3.10", not the float 3.1.
func scalarString(v *yaml.Node, ds *diags, what string) (string, bool) {
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
		ds.add(ConfigFile, v.Line, "%s must be a single value", what)
		return "", false
	}
	return v.Value, true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

func yamlErrLine(err error) int {
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

func yamlErrMsg(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = yamlLineRE.ReplaceAllString(msg, "")
	msg = strings.TrimPrefix(strings.TrimSpace(msg), ": ")
	return strings.ReplaceAll(msg, "\n", " ")
}

// utf8ValidPrefix is the length of the longest prefix of b that is valid
// UTF-8.
func utf8ValidPrefix(b []byte) int {
	n := 0
	for n < len(b) {
		r, size := utf8.DecodeRune(b[n:])
		if r == utf8.RuneError && size <= 1 {
			break
		}
		n += size
	}
	return n
}
