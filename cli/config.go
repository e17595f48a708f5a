package cli

import (
	"fmt"
	"io"

	urfave "github.com/urfave/cli/v2"
)

func (e *Env) configCommand() *urfave.Command {
	return &urfave.Command{
		Name:  "config",
		Usage: "profile settings: active_branch, namespace, user",
		Description: "Settings live in <data-dir>/profiles.json under the --profile name.\n" +
			"  active_branch  default ref of reads and target of writes (main)\n" +
			"  namespace      namespace of table names given without one (default)\n" +
			"  user           author of commits ($LAKEHOUSE_USER, else the OS user)",
		Subcommands: []*urfave.Command{
			{Name: "set", Usage: "set a key", ArgsUsage: "KEY VALUE", Action: e.configSet},
			{Name: "get", Usage: "show one key, or all", ArgsUsage: "[KEY]", Action: e.configGet},
		},
	}
}

type configEntry struct {
	Profile string `json:"profile"`
	Key     string `json:"key"`
	Value   string `json:"value"`
}

type configView struct {
	Profile      string `json:"profile"`
	ActiveBranch string `json:"active_branch"`
	Namespace    string `json:"namespace"`
	User         string `json:"user"`
	Addr         string `json:"addr"`
	// APIKey shows only the key's first characters.
	APIKey string `json:"api_key"`
}

// maskKey shows the first characters of an API key, enough to tell keys
// apart, and hides the secret.
func maskKey(k string) string {
	if len(k) <= 8 {
		return "****"
	}
	return k[:8] + "…"
}

func (e *Env) configSet(c *urfave.Context) error {
	args, err := positional(c, "KEY", "VALUE")
	if err != nil {
		return err
	}
	key, value := args[0], args[1]
	if !isConfigKey(key) {
		return unknownKey(key)
	}
	p, err := e.Profile()
	if err != nil {
		return err
	}
	np := *p
	if err := setConfig(&np, key, value); err != nil {
		return err
	}
	if err := e.saveProfile(np); err != nil {
		return err
	}
	v := configEntry{Profile: e.ProfileName, Key: key, Value: value}
	return e.emit(v, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "%s = %s (profile %s)\n", key, value, e.ProfileName)
		return err
	})
}

func (e *Env) configGet(c *urfave.Context) error {
	args, err := positional(c, "[KEY]")
	if err != nil {
		return err
	}
	p, err := e.Profile()
	if err != nil {
		return err
	}
	all := configView{Profile: e.ProfileName, ActiveBranch: string(p.ActiveBranch), Namespace: string(p.Namespace), User: e.author(p)}
	all.Addr = p.Addr
	if p.APIKey != "" {
		all.APIKey = maskKey(p.APIKey)
	}
	values := map[string]string{keyActiveBranch: all.ActiveBranch, keyNamespace: all.Namespace, keyUser: all.User,
		keyAddr: all.Addr, keyAPIKey: all.APIKey}
	if len(args) == 1 {
		key := args[0]
		if !isConfigKey(key) {
			return unknownKey(key)
		}
		v := configEntry{Profile: e.ProfileName, Key: key, Value: values[key]}
		return e.emit(v, func(w io.Writer) error {
			_, err := fmt.Fprintln(w, v.Value)
			return err
		})
	}
	return e.emit(all, func(w io.Writer) error {
		t := e.newTable("KEY", "VALUE")
		for _, k := range configKeys {
			t.row(k, values[k])
		}
		return t.write(w)
	})
}
