// Package cli is the lakehouse command line: every command, its flags and
// the rendering of its output (aligned tables for people, indented JSON with
// -O json for programs).
//
// Commands validate every string where it enters (branch, tag, namespace and
// table names, refs) with the catalog parsers and then talk only to a
// catalog.Service: in embedded mode a catalog.Local over the bbolt store and
// the Iceberg table format under the data directory.
//
// Errors are printed once, by Main, as "error: <message>" on stderr, and
// mapped to the exit codes of API.md by errdefs.ExitCode: 0 ok, 1 failed,
// 2 usage, 3 not found, 4 conflict, 5 permission denied, 6 unavailable.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	suggestpkg "github.com/lakehouse-dev/lakehouse/internal/suggest"
	urfave "github.com/urfave/cli/v2"
	"golang.org/x/term"
)

// Main runs the command line args (args[0] is the program name) and returns
// the process exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &Env{
		Stdin:     stdin,
		Stdout:    stdout,
		Stderr:    stderr,
		Getenv:    os.Getenv,
		StdoutTTY: isTerminal(stdout),
		StderrTTY: isTerminal(stderr),
	}
	return run(ctx, args, e)
}

// run is Main with every outside dependency in e, so tests can run the app
// in-process with their own environment and clock.
func run(ctx context.Context, args []string, e *Env) int {
	if len(args) > 1 && args[1] == completeCommand {
		e.initCompletion()
		e.complete(ctx, args[2:])
		e.close()
		return errdefs.ExitOK
	}
	app := newApp(e)
	norm, err := normalizeArgs(app, args)
	if err == nil {
		err = app.RunContext(ctx, norm)
	}
	if cerr := e.close(); err == nil {
		err = cerr
	}
	if err == nil {
		return errdefs.ExitOK
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		err = errors.New("interrupted")
	}
	code := exitCode(err)
	if e.JSON() || wantsJSON(args) {
		writeErrorJSON(e.Stderr, err, code)
	} else {
		fmt.Fprintf(e.Stderr, "error: %s\n", err)
	}
	return code
}

// errorView is an error under -O json, written to stderr.
type errorView struct {
	Error string `json:"error"`
	Hint  string `json:"hint,omitempty"`
	Code  int    `json:"code"`  // the exit code
	Class string `json:"class"` // errdefs class: not_found, invalid_argument, ...
}

func writeErrorJSON(w io.Writer, err error, code int) {
	msg, hint := errdefs.Split(err)
	writeJSON(w, errorView{Error: msg, Hint: hint, Code: code, Class: errdefs.ClassName(err)})
}

// wantsJSON reports whether args ask for -O json before the command could
// say so itself (an error in the flags or an unknown command).
func wantsJSON(args []string) bool {
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return false
		}
		switch {
		case a == "-O" || a == "--output" || a == "-output":
			if i+1 < len(args) {
				return args[i+1] == outputJSON
			}
		case strings.HasPrefix(a, "-O=") || strings.HasPrefix(a, "--output=") || strings.HasPrefix(a, "-output="):
			_, v, _ := strings.Cut(a, "=")
			return v == outputJSON
		}
	}
	return false
}

// exitCode maps err to an exit code: the errdefs class, or the code of a
// urfave/cli exit error.
func exitCode(err error) int {
	var ec urfave.ExitCoder
	if errors.As(err, &ec) && errdefs.Class(err) == errdefs.ErrInternal {
		return ec.ExitCode()
	}
	return errdefs.ExitCode(err)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// newApp builds the command tree. Actions close over e.
func newApp(e *Env) *urfave.App {
	app := &urfave.App{
		Name:      "lakehouse",
		HelpName:  "lakehouse",
		Usage:     "a serverless lakehouse: git-style branches over Apache Iceberg tables",
		UsageText: "lakehouse [global options] command [command options] [arguments...]",
		Description: "The active branch (set by `lakehouse checkout`) is the default ref of every read\n" +
			"and the target of every write. main takes writes only by merge.",
		Version:         Version,
		HideVersion:     true, // -v is --verbose here; `lakehouse version` prints the version
		HideHelpCommand: true, // `lakehouse help X` is rewritten to `lakehouse X --help` by normalizeArgs
		// Paths may contain commas: --from a,b.csv is one path.
		DisableSliceFlagSeparator: true,
		Reader:                    e.Stdin,
		Writer:                    e.Stdout,
		ErrWriter:                 e.Stderr,
		Flags:                     globalFlags(),
		Before:                    e.before,
		Action:                    rootAction,
		OnUsageError:              onUsageError,
		// Errors are printed and mapped to exit codes once, in run.
		ExitErrHandler: func(*urfave.Context, error) {},
		Commands: []*urfave.Command{
			e.checkoutCommand(),
			e.branchCommand(),
			e.tagCommand(),
			e.logCommand(),
			e.namespaceCommand(),
			e.tableCommand(),
			e.mergeCommand(),
			e.diffCommand(),
			e.queryCommand(),
			e.initCommand(),
			e.runCommand(),
			e.rerunCommand(),
			e.runsCommand(),
			e.envCommand(),
			e.cacheCommand(),
			e.configCommand(),
			e.infoCommand(),
			e.versionCommand(),
			e.reapCommand(),
			e.backupCommand(),
			e.gcCommand(),
			e.doctorCommand(),
			e.serveCommand(),
			e.authCommand(),
			e.workersCommand(),
			e.completionCommand(),
		},
	}
	walkCommands(app.Commands, func(c *urfave.Command) {
		c.OnUsageError = onUsageError
		c.HideHelpCommand = true
		if len(c.Subcommands) > 0 && c.Action == nil {
			c.Action = groupAction
		}
	})
	return app
}

func walkCommands(cmds []*urfave.Command, fn func(*urfave.Command)) {
	for _, c := range cmds {
		fn(c)
		walkCommands(c.Subcommands, fn)
	}
}

// rootAction runs when no command matched: `lakehouse` alone prints help,
// anything else is an unknown command.
func rootAction(c *urfave.Context) error {
	if !c.Args().Present() {
		return urfave.ShowAppHelp(c)
	}
	return unknownCommand(c, c.App.Commands)
}

// groupAction runs for `lakehouse branch` and friends without a known
// subcommand.
func groupAction(c *urfave.Context) error {
	if c.Args().Present() {
		return unknownCommand(c, c.Command.Subcommands)
	}
	var names []string
	for _, s := range c.Command.VisibleCommands() {
		names = append(names, s.Name)
	}
	return usageError(c, "`%s` needs a subcommand: %s", c.Command.HelpName, strings.Join(names, ", "))
}

func unknownCommand(c *urfave.Context, cmds []*urfave.Command) error {
	name := c.Args().First()
	path := strings.TrimSpace(strings.TrimPrefix(helpName(c), "lakehouse") + " " + name)
	msg := fmt.Sprintf("unknown command %q", path)
	if s := suggest(cmds, name); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return usageError(c, "%s", msg)
}

// onUsageError turns a flag parsing error into a one-line usage error (exit
// 2) instead of urfave/cli's wall of help.
func onUsageError(c *urfave.Context, err error, _ bool) error {
	msg := err.Error()
	if m := flagErrorRE.FindStringSubmatch(msg); m != nil {
		msg = fmt.Sprintf("invalid value %q for %s", m[1], dashed(m[2]))
	} else if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		msg = "unknown flag " + dashed(name)
	} else if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		msg = "flag " + dashed(name) + " needs a value"
	}
	return usageError(c, "%s", msg)
}

var flagErrorRE = regexp.MustCompile(`^invalid value "(.*)" for flag -(\S+): `)

// dashed renders a flag name as people type it: -n, --from-ref.
func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// helpName is the command path of c, e.g. "lakehouse branch create".
func helpName(c *urfave.Context) string {
	if c.Command != nil && c.Command.HelpName != "" {
		return c.Command.HelpName
	}
	return "lakehouse"
}

// usageError returns an ErrInvalidArgument error (exit 2) whose hint points
// at the command's help.
func usageError(c *urfave.Context, format string, args ...any) error {
	return errdefs.WithHint(errdefs.ErrInvalidArgument,
		fmt.Sprintf("run `%s --help` for usage", helpName(c)), format, args...)
}

// positional checks the number of positional arguments of a command and
// returns them. names documents them for the error message; optional ones
// are in brackets ("[REF]"); a trailing "..." accepts any number more.
func positional(c *urfave.Context, names ...string) ([]string, error) {
	args := c.Args().Slice()
	required, variadic := 0, false
	for _, n := range names {
		switch {
		case strings.HasSuffix(n, "..."):
			variadic = true
		case !strings.HasPrefix(n, "["):
			required++
		}
	}
	if len(args) < required {
		return nil, usageError(c, "missing argument %s", names[len(args)])
	}
	if !variadic && len(args) > len(names) {
		extra := args[len(names):]
		return nil, usageError(c, "unexpected argument %q", extra[0])
	}
	return args, nil
}

// suggest returns the command name closest to name (edit distance at most
// 2), or "".
func suggest(cmds []*urfave.Command, name string) string {
	var names []string
	for _, c := range cmds {
		if !c.Hidden {
			names = append(names, c.Names()...)
		}
	}
	return suggestpkg.Closest(name, names, 2)
}
