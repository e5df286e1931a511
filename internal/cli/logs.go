package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/client"
)

func (c *cli) logsCmd() *cobra.Command {
	var (
		file string
		opts client.LogsOptions
	)
	cmd := &cobra.Command{
		Use:   "logs SERVICE",
		Short: "Print a service's output",
		Long: `Print the output of a service's serving instances and their sidecars,
merged in time order, or of one instance (--instance ID), or of one container
of each instance (--container NAME: the service's own, or a sidecar). Lines
are prefixed with their instance ID (INSTANCE/SIDECAR for a sidecar) when
several containers speak.`,
		Example: `  berth logs web -f
  berth logs web --since 10m --tail 100
  berth logs web --container log-shipper`,
		Args: exactArgs("SERVICE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Since != "" {
				if d, err := time.ParseDuration(opts.Since); err != nil || d <= 0 {
					return invalidf("invalid --since %q: expected a duration like 10m or 1h", opts.Since)
				}
			}
			if cmd.Flags().Changed("tail") && opts.Tail < 1 {
				return invalidf("invalid --tail %d: expected a number of lines, 1 or more", opts.Tail)
			}
			cl, err := c.backend(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			app, err := c.serviceApp(ctx, cmd, cl, file)
			if err != nil {
				return err
			}
			p := &logPrinter{w: c.stdout, json: c.json}
			if opts.Instance == "" {
				// Prefix from the first line when the service runs several
				// instances; a status that fails here is reported by the
				// logs request itself.
				if st, err := cl.Status(ctx, app); err == nil {
					p.expect(st, args[0], opts.Container)
				}
			} else {
				// One instance: prefix only when its sidecars speak too.
				p.single = opts.Container != ""
			}
			err = cl.Logs(ctx, app, args[0], opts, p.print)
			if opts.Follow && followInterrupted(err) {
				return nil
			}
			return err
		},
	}
	addFileFlag(cmd, &file, false)
	f := cmd.Flags()
	f.BoolVarP(&opts.Follow, "follow", "f", false, "keep printing new lines")
	f.StringVar(&opts.Since, "since", "", "only lines from this long ago (e.g. 10m)")
	f.StringVar(&opts.Instance, "instance", "", "only this instance's lines (see berth status)")
	f.StringVar(&opts.Container, "container", "", "only this container's lines: the service's own or a sidecar's name")
	f.IntVar(&opts.Tail, "tail", 0, "only the last N lines of each instance (default all)")
	return cmd
}

// logPrinter prints log lines, prefixed with their instance ID ("web-1 | ")
// as soon as more than one instance is known to speak.
type logPrinter struct {
	w      io.Writer
	json   bool
	single bool // one instance was asked for: never prefix
	ids    map[string]bool
	width  int
}

// expect records the containers a status shows for service (of each
// instance: its own and its sidecars', or only container's), so the prefix
// is there from the first line when there are several.
func (p *logPrinter) expect(st api.Status, service, container string) {
	for _, a := range st.Apps {
		for _, s := range a.Services {
			if s.Name != service {
				continue
			}
			for _, in := range s.Instances {
				if in.Revision != s.Revision || in.State == "stopped" {
					continue
				}
				if container == "" || container == service {
					p.seen(in.ID)
				}
				for _, sc := range in.Sidecars {
					if container == "" || container == sc.Name {
						p.seen(in.ID + "/" + sc.Name)
					}
				}
			}
		}
	}
}

func (p *logPrinter) seen(id string) {
	if p.ids == nil {
		p.ids = map[string]bool{}
	}
	p.ids[id] = true
	p.width = max(p.width, len(id))
}

func (p *logPrinter) print(m api.Message) {
	if p.json {
		(&streamPrinter{w: p.w, json: true}).print(m)
		return
	}
	if m.Kind != api.KindLog {
		(&streamPrinter{w: p.w}).print(m)
		return
	}
	if m.Source != "" {
		p.seen(m.Source)
	}
	if p.single || len(p.ids) < 2 {
		fmt.Fprintln(p.w, m.Text)
		return
	}
	fmt.Fprintf(p.w, "%-*s | %s\n", p.width, m.Source, m.Text)
}
