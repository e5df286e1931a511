package cli

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// secretName is a valid environment variable name, as the daemon requires.
var secretName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (c *cli) secretCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Set, list and remove a service's secrets",
		Long: `Secrets are environment variables whose values the daemon stores encrypted
and never shows again. A service receives those its spec lists under
secrets:, from its next deploy on.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(c.secretSetCmd(), c.secretListCmd(), c.secretRemoveCmd())
	return cmd
}

func (c *cli) secretSetCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:     "set SERVICE KEY=VALUE...",
		Short:   "Set secrets of a service",
		Example: `  berth secret set web DATABASE_URL=postgres://db/shop API_KEY=abc`,
		Args:    minArgs("SERVICE", "KEY=VALUE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			values, err := parseSecrets(args[1:])
			if err != nil {
				return err
			}
			cl, app, err := c.clientAndApp(cmd, file)
			if err != nil {
				return err
			}
			keys, err := cl.SecretSet(cmd.Context(), app, args[0], values)
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(c.stdout, keys)
			}
			set := make([]string, 0, len(values))
			for k := range values {
				set = append(set, k)
			}
			sort.Strings(set)
			fmt.Fprintf(c.stdout, "set %s for %s/%s (applied on the next deploy)\n", strings.Join(set, ", "), app, args[0])
			return nil
		},
	}
	addFileFlag(cmd, &file, true)
	return cmd
}

// parseSecrets reads KEY=VALUE arguments. Its errors never show a value:
// an argument without "=" may be a value typed in the wrong place.
func parseSecrets(args []string) (map[string]string, error) {
	values := make(map[string]string, len(args))
	for i, a := range args {
		key, value, ok := strings.Cut(a, "=")
		if !ok {
			if secretName.MatchString(a) {
				return nil, invalidf("secret %s has no value: expected KEY=VALUE", a)
			}
			return nil, invalidf("argument %d is not KEY=VALUE", i+2)
		}
		if !secretName.MatchString(key) {
			return nil, invalidf("invalid secret name %q: use letters, digits and _, not starting with a digit", key)
		}
		if _, dup := values[key]; dup {
			return nil, invalidf("secret %s is given twice", key)
		}
		values[key] = value
	}
	return values, nil
}

func (c *cli) secretListCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:     "ls SERVICE",
		Aliases: []string{"list"},
		Short:   "List a service's secret names (never their values)",
		Args:    exactArgs("SERVICE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, app, err := c.clientAndApp(cmd, file)
			if err != nil {
				return err
			}
			keys, err := cl.SecretList(cmd.Context(), app, args[0])
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(c.stdout, keys)
			}
			if len(keys) == 0 {
				fmt.Fprintf(c.stdout, "%s/%s has no secrets\n", app, args[0])
				return nil
			}
			now := time.Now()
			t := newTable(c.stdout, "KEY", "UPDATED")
			for _, k := range keys {
				t.row(k.Key, age(now, k.UpdatedAt)+" ago")
			}
			t.flush()
			return nil
		},
	}
	addFileFlag(cmd, &file, true)
	return cmd
}

func (c *cli) secretRemoveCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:     "rm SERVICE KEY",
		Aliases: []string{"remove"},
		Short:   "Remove a service's secret",
		Args:    exactArgs("SERVICE", "KEY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !secretName.MatchString(args[1]) {
				return invalidf("invalid secret name %q: use letters, digits and _, not starting with a digit", args[1])
			}
			cl, app, err := c.clientAndApp(cmd, file)
			if err != nil {
				return err
			}
			if err := cl.SecretDelete(cmd.Context(), app, args[0], args[1]); err != nil {
				return err
			}
			if !c.json {
				fmt.Fprintf(c.stdout, "removed %s from %s/%s (applied on the next deploy)\n", args[1], app, args[0])
			}
			return nil
		},
	}
	addFileFlag(cmd, &file, true)
	return cmd
}
