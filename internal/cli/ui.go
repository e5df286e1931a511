package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/spf13/cobra"
)

// openBrowser opens a URL in the desktop's browser; tests replace it.
var openBrowser = func(url string) error {
	if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" && os.Getenv("BROWSER") == "" {
		return errNoBrowser
	}
	cmd := exec.Command("xdg-open", url)
	if b := os.Getenv("BROWSER"); b != "" {
		cmd = exec.Command(b, url)
	}
	return cmd.Start()
}

var errNoBrowser = fmt.Errorf("no browser here")

func (c *cli) uiCmd() *cobra.Command {
	var noOpen bool
	cmd := &cobra.Command{
		Use:   "ui",
		Short: "Print a one-time sign-in URL of the web console (and open it)",
		Long: `Print a one-time URL that signs a browser in to the web console, which
berth server serves on --ui (default http://127.0.0.1:8081). The URL works
once, for 2 minutes, and sets a session cookie for 12 hours. Where a desktop
browser is found (DISPLAY, WAYLAND_DISPLAY or BROWSER), it is opened too.

The console shows the apps of this daemon (the local engine) and acts through
the same API as the CLI. On a remote server, tunnel the console's port, e.g.
ssh -L 8081:127.0.0.1:8081 HOST, and open the URL on your machine.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			if env := c.envName(); env != "" {
				return invalidf("the console shows the local daemon's apps; environment %q is not in it yet: use the CLI with --env %s", env, env)
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			in, err := cl.ConsoleSignIn(cmd.Context())
			if err != nil {
				return err
			}
			if c.json {
				return json.NewEncoder(c.stdout).Encode(in)
			}
			fmt.Fprintln(c.stdout, in.URL)
			fmt.Fprintf(c.stderr, "This sign-in link works once, until %s.\n", in.Expires.Local().Format(time.TimeOnly))
			if !noOpen {
				_ = openBrowser(in.URL)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&noOpen, "no-open", false, "print the URL only; do not open a browser")
	return cmd
}
