package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/runtime/runrec"
	urfave "github.com/urfave/cli/v2"
)

// completeCommand is the hidden command the completion scripts call with
// the words typed so far (the last one being completed, possibly empty).
// It prints one candidate per line and nothing on any error.
const completeCommand = "__complete"

// completionShells are the shells `lakehouse completion` writes scripts for.
var completionShells = []string{"bash", "zsh", "fish"}

func (e *Env) completionCommand() *urfave.Command {
	return &urfave.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh or fish)",
		ArgsUsage: "SHELL",
		Description: "Completes commands, flags, and branch, tag, table, namespace and run names from the\n" +
			"catalog (local or the server's). Install it with one of:\n\n" +
			"   bash: echo 'source <(lakehouse completion bash)' >> ~/.bashrc\n" +
			"   zsh:  echo 'source <(lakehouse completion zsh)' >> ~/.zshrc\n" +
			"   fish: lakehouse completion fish > ~/.config/fish/completions/lakehouse.fish",
		Action: func(c *urfave.Context) error {
			args, err := positional(c, "SHELL")
			if err != nil {
				return err
			}
			script, ok := completionScripts[args[0]]
			if !ok {
				return usageError(c, "unknown shell %q: use bash, zsh or fish", args[0])
			}
			_, err = io.WriteString(e.Stdout, script)
			return err
		},
	}
}

var completionScripts = map[string]string{
	"bash": `# lakehouse completion for bash: source <(lakehouse completion bash)
_lakehouse() {
	local IFS=$'\n' cur=${COMP_WORDS[COMP_CWORD]}
	COMPREPLY=($(compgen -W "$("${COMP_WORDS[0]}" __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)" -- "$cur"))
}
complete -o default -F _lakehouse lakehouse
`,
	"zsh": `#compdef lakehouse
# lakehouse completion for zsh: source <(lakehouse completion zsh)
_lakehouse() {
	local -a cands
	cands=("${(@f)$("${words[1]}" __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}")
	if (( ${#cands} )) && [[ -n ${cands[1]} ]]; then
		compadd -- "${cands[@]}"
	else
		_files
	fi
}
compdef _lakehouse lakehouse
`,
	"fish": `# lakehouse completion for fish: lakehouse completion fish > ~/.config/fish/completions/lakehouse.fish
function __lakehouse_complete
	set -l tokens (commandline -opc) (commandline -ct)
	$tokens[1] __complete $tokens[2..-1] 2>/dev/null
end
complete -c lakehouse -a '(__lakehouse_complete)'
`,
}

// complete prints the candidates for the last of words (the words after
// the program name). It never fails: completion must not print errors.
func (e *Env) complete(ctx context.Context, words []string) {
	if len(words) == 0 {
		words = []string{""}
	}
	e.Log = slog.New(slog.DiscardHandler)
	app := newApp(e)
	cur := words[len(words)-1]
	var (
		path    []string
		cmds    = app.Commands
		flags   = app.Flags
		cmd     *urfave.Command
		pos     int
		pending string // a flag waiting for its value
	)
	globals := flagArity(app.Flags)
	for _, w := range words[:len(words)-1] {
		if pending != "" {
			e.completionGlobal(pending, w)
			pending = ""
			continue
		}
		if len(w) > 1 && w[0] == '-' {
			name, hasValue := flagName(w)
			arity := flagArity(flags)
			takes, ok := arity[name]
			if !ok {
				takes = globals[name]
			}
			if hasValue {
				_, v, _ := strings.Cut(w, "=")
				e.completionGlobal(name, v)
			} else if takes {
				pending = name
			}
			continue
		}
		if c := findCommand(cmds, w); c != nil && pos == 0 {
			cmd, path, cmds, flags = c, append(path, c.Name), c.Subcommands, c.Flags
			continue
		}
		pos++
	}
	var out []string
	switch {
	case pending != "":
		out = e.completeFlagValue(ctx, strings.Join(path, " "), pending)
	case strings.HasPrefix(cur, "-"):
		for _, f := range append(slices.Clone(flags), app.Flags...) {
			for _, n := range f.Names() {
				if len(n) == 1 {
					out = append(out, "-"+n)
				} else {
					out = append(out, "--"+n)
				}
			}
		}
	case len(cmds) > 0 && pos == 0:
		for _, c := range cmds {
			if !c.Hidden {
				out = append(out, c.Name)
			}
		}
	case cmd != nil:
		out = e.completePositional(ctx, strings.Join(path, " "), pos)
	}
	for _, s := range out {
		if strings.HasPrefix(s, cur) {
			fmt.Fprintln(e.Stdout, s)
		}
	}
}

// initCompletion sets what before would from the environment; the words
// may override it (see completionGlobal).
func (e *Env) initCompletion() {
	e.ProfileName = "default"
	e.Output = outputTable
	e.DataDir = e.Getenv(envDataDir)
	if e.DataDir == "" {
		if home, err := os.UserHomeDir(); err == nil {
			e.DataDir = filepath.Join(home, ".lakehouse")
		}
	}
	if abs, err := filepath.Abs(e.DataDir); err == nil {
		e.DataDir = abs
	}
	e.Addr = e.Getenv(envAddr)
}

// completionGlobal applies a global flag seen in the words, so names come
// from the data dir or server the command would use.
func (e *Env) completionGlobal(name, value string) {
	switch name {
	case "data-dir":
		if abs, err := filepath.Abs(value); err == nil {
			e.DataDir = abs
		}
	case "addr":
		e.Addr = value
	case "profile":
		if checkProfileName(value) == nil {
			e.ProfileName = value
		}
	}
}

// completeFlagValue lists the values of a flag of the command at path.
func (e *Env) completeFlagValue(ctx context.Context, path, flag string) []string {
	switch flag {
	case "ref", "r", "from-ref":
		return e.completeRefs(ctx, true)
	case "branch", "b", "into":
		return e.completeRefs(ctx, false)
	case "from":
		if path == "table revert" {
			return e.completeRefs(ctx, true)
		}
		return nil // files
	case "namespace", "n":
		if path == "log" {
			return nil // -n is a count there
		}
		return e.completeNamespaces(ctx)
	case "output", "O":
		if path == "query" {
			return []string{"table", "json", "csv", "jsonl", "parquet", "arrow", "arrows"}
		}
		return []string{"table", "json"}
	case "mode":
		return []string{"append", "replace", "overwrite-partitions"}
	case "launcher":
		return []string{"auto", "process", "containerd"}
	case "isolation":
		return []string{"auto", "none"}
	case "role":
		if path == "serve" {
			return []string{roleAll, roleControl, roleWorker}
		}
		return []string{"admin", "writer", "reader", "worker"}
	case "profile":
		all, _ := readProfiles(e.ProfilesPath())
		out := []string{"default"}
		for k := range all {
			out = append(out, k)
		}
		return out
	}
	return nil
}

// completePositional lists the values of the n-th positional argument
// (from 0) of the command at path.
func (e *Env) completePositional(ctx context.Context, path string, n int) []string {
	switch path {
	case "checkout", "branch rm", "branch get", "log":
		if n == 0 {
			return e.completeRefs(ctx, path == "log")
		}
	case "branch rename":
		if n == 0 {
			return e.completeRefs(ctx, false)
		}
	case "merge", "diff":
		if n <= 1 {
			return e.completeRefs(ctx, true)
		}
	case "tag rm":
		return e.completeTags(ctx)
	case "table get", "table rm", "table history", "table revert", "table import":
		if n == 0 {
			return e.completeTables(ctx)
		}
	case "namespace rm":
		return e.completeNamespaces(ctx)
	case "runs get", "runs logs", "runs cancel", "runs rm", "rerun":
		if n == 0 {
			return e.completeRuns(ctx)
		}
	case "config set", "config get":
		if n == 0 {
			return configKeys
		}
	case "completion":
		return completionShells
	}
	return nil
}

// completionService opens the catalog for completion, waiting little for
// a lock: a slow completion is worse than none.
func (e *Env) completionService(ctx context.Context) (catalog.Service, context.Context, context.CancelFunc) {
	// Completion never creates a catalog where there is none.
	if p, err := e.Profile(); err != nil {
		return nil, nil, nil
	} else if e.serverAddr(p) == "" {
		if _, err := os.Stat(e.CatalogPath()); err != nil {
			return nil, nil, nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	if e.Getenv(envLockTimeout) == "" {
		getenv := e.Getenv
		e.Getenv = func(k string) string {
			if k == envLockTimeout {
				return "200ms"
			}
			return getenv(k)
		}
	}
	svc, err := e.Service(ctx)
	if err != nil {
		cancel()
		return nil, nil, nil
	}
	return svc, ctx, cancel
}

// completeRefs lists branch names, and tag names when withTags.
func (e *Env) completeRefs(ctx context.Context, withTags bool) []string {
	return e.completeNames(ctx, true, withTags)
}

func (e *Env) completeTags(ctx context.Context) []string { return e.completeNames(ctx, false, true) }

func (e *Env) completeNames(ctx context.Context, branches, tags bool) []string {
	svc, ctx, cancel := e.completionService(ctx)
	if svc == nil {
		return nil
	}
	defer cancel()
	var out []string
	if branches {
		bs, _ := svc.ListBranches(ctx)
		for _, b := range bs {
			out = append(out, string(b.Name))
		}
	}
	if tags {
		ts, _ := svc.ListTags(ctx)
		for _, t := range ts {
			out = append(out, string(t.Name))
		}
	}
	return out
}

// completeTables lists the tables on the active branch, qualified, and
// unqualified for the profile's namespace.
func (e *Env) completeTables(ctx context.Context) []string {
	p, err := e.Profile()
	if err != nil {
		return nil
	}
	svc, ctx, cancel := e.completionService(ctx)
	if svc == nil {
		return nil
	}
	defer cancel()
	ts, _ := svc.ListTables(ctx, catalog.Ref{Name: string(p.ActiveBranch)}, "")
	var out []string
	for _, t := range ts {
		out = append(out, t.Ident.String())
		if t.Namespace == p.Namespace {
			out = append(out, t.Name)
		}
	}
	return out
}

func (e *Env) completeNamespaces(ctx context.Context) []string {
	p, err := e.Profile()
	if err != nil {
		return nil
	}
	svc, ctx, cancel := e.completionService(ctx)
	if svc == nil {
		return nil
	}
	defer cancel()
	ns, _ := svc.ListNamespaces(ctx, catalog.Ref{Name: string(p.ActiveBranch)})
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = string(n)
	}
	return out
}

// completeRuns lists the runs newest first: the server's when the
// commands talk to one, else those of the local data dir.
func (e *Env) completeRuns(ctx context.Context) []string {
	recs := e.completionRuns(ctx)
	out := make([]string, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.ID)
	}
	return out
}

func (e *Env) completionRuns(ctx context.Context) []*runrec.Record {
	p, err := e.Profile()
	if err != nil {
		return nil
	}
	if e.serverAddr(p) != "" {
		rc, err := e.remoteClient()
		if err != nil || rc == nil {
			return nil
		}
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		recs, _ := rc.ListRuns(ctx, 0)
		return recs
	}
	if _, err := os.Stat(filepath.Join(e.DataDir, "runs")); err != nil {
		return nil
	}
	runs, err := runrec.Open(filepath.Join(e.DataDir, "runs"))
	if err != nil {
		return nil
	}
	recs, _ := runs.List()
	return recs
}
