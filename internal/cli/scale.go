package cli

import (
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

func (c *cli) scaleCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:     "scale SERVICE=N...",
		Short:   "Set services' fixed instance counts",
		Example: "  berth scale web=3 worker=1",
		Args:    minArgs("SERVICE=N"),
		RunE: func(cmd *cobra.Command, args []string) error {
			counts, err := parseCounts(args)
			if err != nil {
				return err
			}
			cl, app, err := c.clientAndApp(cmd, file)
			if err != nil {
				return err
			}
			st, err := cl.Scale(cmd.Context(), app, counts)
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(c.stdout, st)
			}
			only := map[string]bool{}
			for s := range counts {
				only[s] = true
			}
			printServices(c.stdout, st, only)
			return nil
		},
	}
	addFileFlag(cmd, &file, true)
	c.addLockWaitFlag(cmd)
	return cmd
}

// parseCounts reads SERVICE=N arguments.
func parseCounts(args []string) (map[string]int, error) {
	counts := make(map[string]int, len(args))
	for _, a := range args {
		svc, n, ok := strings.Cut(a, "=")
		count, err := strconv.Atoi(n)
		if !ok || svc == "" || err != nil || count < 0 {
			return nil, invalidf("invalid %q: expected SERVICE=N with N a number of instances (0 or more)", a)
		}
		if _, dup := counts[svc]; dup {
			return nil, invalidf("%s is scaled twice", svc)
		}
		counts[svc] = count
	}
	return counts, nil
}
