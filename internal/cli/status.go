package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/spec"
)

func (c *cli) statusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show apps, services, revisions, instances and URLs",
		Long: `Show every app (or the one named with --app): each service's state, serving
revision, running/desired instances and URLs, then each service's hosts and
instances, and each entrypoint's hosts (a host belongs to one of them).`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.backend(cmd)
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
			if len(s.Hosts) > 0 {
				fmt.Fprintln(w, "  hosts: "+strings.Join(s.Hosts, ", "))
			}
			if s.Limits != nil {
				fmt.Fprintln(w, "  limits: "+limitsText(s.Limits))
			}
			printAutoscale(w, s.Autoscale)
			if len(s.Instances) == 0 {
				fmt.Fprintln(w, "  no instances")
			} else {
				t := newTable(w, "  ID", "REV", "STATE", "ADDR", "RESTARTS", "AGE")
				for _, in := range s.Instances {
					t.row("  "+in.ID, revision(in.Revision), in.State, orDash(in.Addr), strconv.Itoa(in.Restarts), age(now, in.StartedAt))
					// Sidecars under their instance, as INSTANCE/NAME.
					for _, sc := range in.Sidecars {
						t.row("  "+in.ID+"/"+sc.Name, revision(in.Revision), sc.State, "-", strconv.Itoa(sc.Restarts), "")
					}
				}
				t.flush()
			}
			printTraffic(w, s.Traffic)
			if in := s.Internal; in != nil && in.Requests > 0 {
				fmt.Fprintf(w, "  internal: %s: %d requests, %d errors, mean %s\n", in.URL, in.Requests, in.Errors, millis(in.LatencyMeanMS))
			}
		}
		// Entrypoints hold hosts too: each host is shown under what holds it.
		for _, ep := range a.Entrypoints {
			fmt.Fprintln(w)
			fmt.Fprintf(w, "%s entrypoint %s\n", a.Name, ep.Name)
			fmt.Fprintln(w, "  hosts: "+strings.Join(ep.Hosts, ", "))
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

// printAutoscale writes one line on what the autoscaler sees, if any.
func printAutoscale(w io.Writer, a *api.AutoscaleStatus) {
	if a == nil {
		return
	}
	line := fmt.Sprintf("  autoscale: %d..%d instances, target %d in flight each; in flight now %.1f (stable), %.1f (panic)",
		a.Min, a.Max, a.Concurrency, a.StableAverage, a.PanicAverage)
	if a.Panicking {
		line += ", panicking"
	}
	if a.Parked > 0 {
		line += fmt.Sprintf("; %d parked for a fast start", a.Parked)
	}
	fmt.Fprintln(w, line)
}

// printTraffic writes the request rate and latency of each revision.
func printTraffic(w io.Writer, traffic []api.RevisionTraffic) {
	if len(traffic) == 0 {
		return
	}
	t := newTable(w, "  REV", "REQ/S", "P50", "P99", "MEAN", "REQUESTS", "WINDOW")
	for _, rt := range traffic {
		t.row("  "+revision(rt.Revision), strconv.FormatFloat(rt.RequestsPerSecond, 'f', 2, 64),
			millis(rt.LatencyP50MS), millis(rt.LatencyP99MS), millis(rt.LatencyMeanMS),
			strconv.FormatUint(rt.Requests, 10), orDash(rt.Window))
	}
	t.flush()
}

// millis formats a latency in milliseconds, "-" when there is none.
func millis(ms float64) string {
	switch {
	case ms <= 0:
		return "-"
	case ms < 10:
		return strconv.FormatFloat(ms, 'f', 1, 64) + "ms"
	case ms < 10000:
		return strconv.FormatFloat(ms, 'f', 0, 64) + "ms"
	default:
		return strconv.FormatFloat(ms/1000, 'f', 1, 64) + "s"
	}
}

// limitsText writes resource limits as a user wrote them in berth.yaml.
func limitsText(l *api.Limits) string {
	var parts []string
	if l.CPU > 0 {
		parts = append(parts, "cpu "+strconv.FormatFloat(l.CPU, 'f', -1, 64))
	}
	if l.Memory > 0 {
		parts = append(parts, "memory "+spec.FormatSize(l.Memory))
	}
	if l.Pids > 0 {
		parts = append(parts, "pids "+strconv.FormatInt(l.Pids, 10))
	}
	return strings.Join(parts, ", ")
}
