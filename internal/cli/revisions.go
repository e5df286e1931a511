package cli

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"
)

func (c *cli) revisionsCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "revisions SERVICE",
		Short: "List a service's revisions",
		Args:  exactArgs("SERVICE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, app, err := c.clientAndApp(cmd, file)
			if err != nil {
				return err
			}
			revs, err := cl.Revisions(cmd.Context(), app, args[0])
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(c.stdout, revs)
			}
			if len(revs) == 0 {
				fmt.Fprintf(c.stdout, "%s/%s has no revisions yet\n", app, args[0])
				return nil
			}
			now := time.Now()
			t := newTable(c.stdout, "REV", "STATUS", "IMAGE", "AGE", "BY", "MESSAGE")
			for _, r := range revs {
				t.row(strconv.Itoa(r.Number), r.Status, orDash(r.Image), age(now, r.CreatedAt), orDash(r.By), r.Message)
			}
			t.flush()
			return nil
		},
	}
	addFileFlag(cmd, &file, true)
	return cmd
}
