package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (c *cli) pauseCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "pause SERVICE",
		Short: "Stop a service's instances, keeping its revision for resume",
		Args:  exactArgs("SERVICE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, app, err := c.clientAndApp(cmd, file)
			if err != nil {
				return err
			}
			st, err := cl.Pause(cmd.Context(), app, args[0])
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(c.stdout, st)
			}
			fmt.Fprintf(c.stdout, "paused %s/%s: %q starts revision %s again\n", app, args[0], "berth resume "+args[0], revision(st.Revision))
			return nil
		},
	}
	addFileFlag(cmd, &file, true)
	c.addLockWaitFlag(cmd)
	return cmd
}

func (c *cli) resumeCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "resume SERVICE",
		Short: "Start a paused service again",
		Args:  exactArgs("SERVICE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, app, err := c.clientAndApp(cmd, file)
			if err != nil {
				return err
			}
			p := &streamPrinter{w: c.stdout, json: c.json, logIndent: "    "}
			if _, err := cl.Resume(cmd.Context(), app, args[0], p.print); err != nil {
				return err
			}
			if !c.json {
				fmt.Fprintf(c.stdout, "resumed %s/%s\n", app, args[0])
			}
			return nil
		},
	}
	addFileFlag(cmd, &file, true)
	c.addLockWaitFlag(cmd)
	return cmd
}
