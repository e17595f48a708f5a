package cli

import (
	"fmt"
	"strings"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	urfave "github.com/urfave/cli/v2"
)

// normalizeArgs reorders a command line so that urfave/cli sees every flag.
// urfave/cli (like the standard flag package) stops parsing flags at the
// first positional argument and knows global flags only before the command
// name; people write `lakehouse branch create alice.dev --from-ref main -O json`.
// So global flags move to the front, the command's own flags go before its
// positional arguments, and the order within each group is kept. A flag the
// command defines wins over a global flag of the same name. "--" ends flag
// parsing; everything after it is positional.
//
// `lakehouse help X Y` becomes `lakehouse X Y --help`.
//
// A flag that needs a value but ends the line is a usage error, and so is a
// word where a command belongs that names none (reported with the closest
// command before any flag is parsed). `--version` before a command is the
// version command.
func normalizeArgs(app *urfave.App, args []string) ([]string, error) {
	if len(args) == 0 {
		return args, nil
	}
	globals := flagArity(app.Flags)
	var (
		global, path, local, pos []string
		cmdFlags                 map[string]bool
		subs                     = app.Commands
		inCommand, help          bool
		dashdash                 bool
	)
	rest := args[1:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			dashdash = true
			pos = append(pos, rest[i+1:]...)
			break
		}
		if len(a) > 1 && a[0] == '-' {
			name, hasValue := flagName(a)
			if name == "version" && !inCommand && !help && len(pos) == 0 && !hasValue {
				// `lakehouse --version` is `lakehouse version`.
				a = "version"
				c := findCommand(subs, a)
				path = append(path, a)
				subs, cmdFlags, inCommand = c.Subcommands, flagArity(c.Flags), true
				continue
			}
			takesValue, isCmdFlag := cmdFlags[name]
			takesGlobal, isGlobal := globals[name]
			dst := &global
			switch {
			case inCommand && isCmdFlag:
				dst = &local
			case inCommand && name == "version":
				dst = &local // --version only before a command: `branch ls --version` is unknown
			case isGlobal:
				takesValue = takesGlobal
			case inCommand:
				dst = &local // help or unknown: reported by the command
			}
			*dst = append(*dst, a)
			if takesValue && !hasValue {
				if i+1 == len(rest) {
					return nil, errdefs.WithHint(errdefs.ErrInvalidArgument,
						fmt.Sprintf("run `%s --help` for usage", strings.Join(append([]string{"lakehouse"}, path...), " ")),
						"flag %s needs a value", dashed(name))
				}
				i++
				*dst = append(*dst, rest[i])
			}
			continue
		}
		if len(pos) == 0 && subs != nil {
			if a == "help" && !inCommand && !help && findCommand(subs, a) == nil {
				help = true
				continue
			}
			if c := findCommand(subs, a); c != nil {
				path = append(path, a)
				subs, cmdFlags, inCommand = c.Subcommands, flagArity(c.Flags), true
				continue
			}
		}
		if len(pos) == 0 && len(subs) > 0 && !help && (!inCommand || isGroup(path, app.Commands)) {
			// An unknown command is reported before its flags are: the
			// flags of `lakehouse chekout -b x` belong to no command.
			return nil, unknownCommandError(path, a, subs)
		}
		pos = append(pos, a)
		subs = nil
	}
	if help {
		if len(pos) > 0 {
			// `help nosuchcommand`: let the unknown command be reported.
			local = append(local, pos...)
			pos = nil
		} else {
			local = append(local, "--help")
		}
	}
	out := make([]string, 0, len(args)+1)
	out = append(out, args[0])
	out = append(out, global...)
	out = append(out, path...)
	out = append(out, local...)
	if dashdash || startsWithDash(pos) {
		out = append(out, "--")
	}
	return append(out, pos...), nil
}

// flagArity maps every name of every flag to whether it takes a value.
func flagArity(flags []urfave.Flag) map[string]bool {
	m := map[string]bool{"h": false, "help": false}
	for _, f := range flags {
		_, isBool := f.(*urfave.BoolFlag)
		for _, n := range f.Names() {
			m[n] = !isBool
		}
	}
	return m
}

// flagName returns the name of a flag token ("--from-ref=x" → "from-ref")
// and whether the token carries its value.
func flagName(tok string) (string, bool) {
	name := strings.TrimPrefix(strings.TrimPrefix(tok, "-"), "-")
	if i := strings.IndexByte(name, '='); i >= 0 {
		return name[:i], true
	}
	return name, false
}

func findCommand(cmds []*urfave.Command, name string) *urfave.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

func startsWithDash(args []string) bool {
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			return true
		}
	}
	return false
}

// isGroup reports whether the command at path only groups subcommands
// (`lakehouse branch`): a word after it that names none of them is an
// unknown command, not an argument.
func isGroup(path []string, cmds []*urfave.Command) bool {
	var c *urfave.Command
	for _, name := range path {
		if c = findCommand(cmds, name); c == nil {
			return false
		}
		cmds = c.Subcommands
	}
	return c != nil && len(c.Subcommands) > 0 && c.ArgsUsage == ""
}

// unknownCommandError is the usage error of `lakehouse [path...] name` where
// name is none of cmds, with the closest command name as a suggestion.
func unknownCommandError(path []string, name string, cmds []*urfave.Command) error {
	parent := strings.Join(append([]string{"lakehouse"}, path...), " ")
	msg := fmt.Sprintf("unknown command %q", strings.Join(append(append([]string{}, path...), name), " "))
	if s := suggest(cmds, name); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return errdefs.WithHint(errdefs.ErrInvalidArgument, fmt.Sprintf("run `%s --help` for usage", parent), "%s", msg)
}
