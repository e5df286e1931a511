package cli

import (
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/api"
)

func (c *cli) rollbackCmd() *cobra.Command {
	var (
		file string
		to   int
	)
	cmd := &cobra.Command{
		Use:   "rollback SERVICE",
		Short: "Return a service to its previous revision (or --to N)",
		Long: `Return a service to an earlier revision: the previous one, kept stopped but
present for an instant rollback, or --to N. Progress is printed like a deploy.`,
		Args: exactArgs("SERVICE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to < 0 {
				return invalidf("invalid --to %d: expected a revision number (see \"berth revisions %s\")", to, args[0])
			}
			cl, app, err := c.clientAndApp(cmd, file)
			if err != nil {
				return err
			}
			p := &streamPrinter{w: c.stdout, json: c.json, logIndent: "    "}
			res, err := cl.Rollback(cmd.Context(), app, args[0], api.RollbackRequest{To: to}, p.print)
			if err != nil {
				return outcomeUnknown("rollback", args[0], err) // deploy.go
			}
			if !c.json {
				printDeployed(c.stdout, res.Deployed)
			}
			return nil
		},
	}
	addFileFlag(cmd, &file, true)
	cmd.Flags().IntVar(&to, "to", 0, "the revision to return to (default: the previous one)")
	c.addLockWaitFlag(cmd)
	return cmd
}
