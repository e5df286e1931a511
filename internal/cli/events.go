package cli

import (
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/client"
)

func (c *cli) eventsCmd() *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Print what happened: deploys, rollbacks, crashes, scaling",
		Long:  `Print the recent events of every app (or of --app APP); -f keeps printing new ones.`,
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.backend(cmd)
			if err != nil {
				return err
			}
			p := &streamPrinter{w: c.stdout, json: c.json}
			err = cl.Events(cmd.Context(), client.EventsOptions{App: c.app, Follow: follow}, p.print)
			if follow && followInterrupted(err) {
				return nil
			}
			return err
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new events")
	return cmd
}
