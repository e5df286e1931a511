package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/api"
)

func (c *cli) statusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show apps, services, revisions, instances and URLs",
		Long: `Show every app (or the one named with --app): each service's state, serving
revision, running/desired instances and URLs, then each service's instances.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			st, err := cl.Status(cmd.Context(), c.app)
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(c.stdout, st)
			}
			printStatus(c.stdout, st, time.Now())
			return nil
		},
	}
}

// printStatus writes the services table, then each service's instances.
func printStatus(w io.Writer, st api.Status, now time.Time) {
	if len(st.Apps) == 0 {
		fmt.Fprintln(w, `no apps deployed yet: run "berth deploy" in the app's directory`)
		return
	}
	printServices(w, st, nil)
	for _, a := range st.Apps {
		for _, s := range a.Services {
			fmt.Fprintln(w)
			head := s.App + "/" + s.Name
			if s.App == "" {
				head = a.Name + "/" + s.Name
			}
			if s.Message != "" {
				head += ": " + s.Message
			}
			fmt.Fprintln(w, head)
			if len(s.Instances) == 0 {
				fmt.Fprintln(w, "  no instances")
				continue
			}
			t := newTable(w, "  ID", "REV", "STATE", "ADDR", "RESTARTS", "AGE")
			for _, in := range s.Instances {
				t.row("  "+in.ID, revision(in.Revision), in.State, orDash(in.Addr), strconv.Itoa(in.Restarts), age(now, in.StartedAt))
			}
			t.flush()
		}
	}
}

// printServices writes one row per service; only, when not nil, limits the
// rows to those services.
func printServices(w io.Writer, st api.Status, only map[string]bool) {
	t := newTable(w, "APP", "SERVICE", "STATE", "REV", "INSTANCES", "URL")
	for _, a := range st.Apps {
		for _, s := range a.Services {
			if only != nil && !only[s.Name] {
				continue
			}
			t.row(a.Name, s.Name, orDash(s.State), revision(s.Revision),
				fmt.Sprintf("%d/%d", s.Running, s.Desired), orDash(strings.Join(s.URLs, " ")))
		}
	}
	t.flush()
}
