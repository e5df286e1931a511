package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (c *cli) destroyCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "destroy",
		Short: "Remove an app: its containers, revisions, secrets and routes",
		Long: `Remove an app: the one in ./berth.yaml (or -f FILE), or --app APP. Unlike
the verbs that name a service, destroy never guesses "the only app".`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			app, err := c.specApp(cmd, file)
			if err != nil {
				return err
			}
			cl, err := c.backend(cmd)
			if err != nil {
				return err
			}
			p := &streamPrinter{w: c.stdout, json: c.json, logIndent: "    "}
			if _, err := cl.Destroy(cmd.Context(), app, p.print); err != nil {
				return err
			}
			if !c.json {
				fmt.Fprintf(c.stdout, "destroyed app %s\n", app)
			}
			return nil
		},
	}
	addFileFlag(cmd, &file, true)
	c.addLockWaitFlag(cmd)
	return cmd
}
