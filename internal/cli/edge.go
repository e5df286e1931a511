package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/api"
)

func (c *cli) edgeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "edge",
		Short: "Entrypoints: switch, shift, maintenance and cache of the edge",
		Long: `Entrypoints are stable host names in front of origins (a berth service or an
external URL) that move without touching DNS. berth.yaml declares them in
its edge: section; these verbs change where their traffic goes.

With --env, an entrypoint of an AWS environment is a CloudFront
distribution in front of the app's load balancer (berth deploy --env
creates it): ls and show read the live distribution, switch moves its
default origin and waits until it is deployed, shift sends a share through
a continuous-deployment staging distribution (at most 15%) or, between two
services, through the load balancer's weights, and invalidate is a
CloudFront invalidation. No DNS record changes. maintenance is local only;
rotate-secret is AWS only.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(c.edgeLsCmd(), c.edgeShowCmd(), c.edgeSwitchCmd(), c.edgeShiftCmd(), c.edgeMaintenanceCmd(), c.edgeInvalidateCmd(), c.edgeRotateSecretCmd())
	return cmd
}

func (c *cli) edgeLsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "ls",
		Short: "List the entrypoints",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			if c.envName() != "" {
				return c.edgeLsAWS(cmd)
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			eps, err := cl.Entrypoints(cmd.Context())
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(c.stdout, eps)
			}
			if len(eps) == 0 {
				fmt.Fprintln(c.stdout, "no entrypoints: declare them in the edge: section of berth.yaml")
				return nil
			}
			t := newTable(c.stdout, "NAME", "APP", "HOSTS", "ORIGIN", "SHARES", "STATE")
			for _, ep := range eps {
				t.row(ep.Name, ep.App, strings.Join(ep.Hosts, ","), ep.Origin, orDash(sharesText(ep.Shares)), entrypointState(ep))
			}
			t.flush()
			return nil
		},
	}
}

func (c *cli) edgeShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show ENTRYPOINT",
		Short: "Show an entrypoint: hosts, origins, shift, cache",
		Args:  exactArgs("ENTRYPOINT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if c.envName() != "" {
				return c.edgeShowAWS(cmd, args[0])
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			ep, err := cl.Entrypoint(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(c.stdout, ep)
			}
			printEntrypoint(c.stdout, ep)
			return nil
		},
	}
}

func (c *cli) edgeSwitchCmd() *cobra.Command {
	var (
		to    string
		force bool
	)
	cmd := &cobra.Command{
		Use:   "switch ENTRYPOINT --to ORIGIN",
		Short: "Move all of an entrypoint's traffic to an origin at once",
		Long: `Move all of an entrypoint's traffic to ORIGIN at once, ending any shift:
requests in flight finish where they went, new ones go to ORIGIN. ORIGIN is
a service of the entrypoint's app (web), of another app (blog/web), or a URL
(https://xyz.awsapprunner.com). An origin that cannot take traffic now (a
URL that does not answer, a service without a healthy instance) is refused
unless --force.`,
		Example: `  berth edge switch www --to web
  berth edge switch www --to https://xyz.awsapprunner.com`,
		Args: exactArgs("ENTRYPOINT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return usagef(cmd, "missing --to ORIGIN")
			}
			if c.envName() != "" {
				return c.edgeSwitchAWS(cmd, args[0], to)
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			ep, err := cl.EdgeSwitch(cmd.Context(), args[0], api.SwitchRequest{Origin: to, Force: force})
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(c.stdout, ep)
			}
			fmt.Fprintf(c.stdout, "%s: all traffic to %s\n", ep.Name, ep.Origin)
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the origin: SERVICE, APP/SERVICE or URL")
	cmd.Flags().BoolVar(&force, "force", false, "switch even if the origin does not answer now")
	return cmd
}

func (c *cli) edgeShiftCmd() *cobra.Command {
	var (
		sticky, header, rate, window string
		noGuard, force               bool
	)
	cmd := &cobra.Command{
		Use:   "shift ENTRYPOINT ORIGIN=PERCENT...",
		Short: "Send a share of an entrypoint's traffic to other origins",
		Long: `Send PERCENT of ENTRYPOINT's traffic to ORIGIN; the active origin keeps the
rest. A shift replaces the previous one; ORIGIN=0 keeps ORIGIN reachable
through --header only. With --sticky cookie each client stays on the origin
it got first. A guard rolls the shift back by itself when the shared
origins' error rate (5xx answers, connection failures) passes
--guard-error-rate over --guard-window; end a shift with "berth edge switch".`,
		Example: `  berth edge shift www web=10
  berth edge shift www web=50 --sticky cookie --header X-Berth-Origin
  berth edge shift www web=10 --guard-error-rate 2% --guard-window 1m`,
		Args: minArgs("ENTRYPOINT", "ORIGIN=PERCENT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := api.ShiftRequest{Shares: map[string]float64{}, Sticky: sticky, Header: header, GuardWindow: window, NoGuard: noGuard, Force: force}
			for _, a := range args[1:] {
				origin, pct, ok := strings.Cut(a, "=")
				p, err := parsePercent(pct)
				if !ok || origin == "" || err != nil {
					return invalidf("invalid %q: expected ORIGIN=PERCENT with PERCENT from 0 to 100, e.g. web=10", a)
				}
				if _, dup := req.Shares[origin]; dup {
					return invalidf("%s is shifted twice", origin)
				}
				req.Shares[origin] = p
			}
			if rate != "" {
				p, err := parsePercent(rate)
				if err != nil || p == 0 {
					return invalidf("invalid --guard-error-rate %q: a percentage above 0 and at most 100, e.g. 1%%", rate)
				}
				req.GuardErrorRate = &p
			}
			switch sticky {
			case "", "cookie", "none":
			default:
				return invalidf("invalid --sticky %q: use cookie or none", sticky)
			}
			if c.envName() != "" {
				return c.edgeShiftAWS(cmd, args[0], req, rate != "" || window != "")
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			ep, err := cl.EdgeShift(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(c.stdout, ep)
			}
			rest := 100.0
			for _, s := range ep.Shares {
				rest -= s.Percent
			}
			fmt.Fprintf(c.stdout, "%s: %s; %s keeps %v%%\n", ep.Name, sharesText(ep.Shares), ep.Origin, rest)
			if ep.Guard != nil {
				fmt.Fprintf(c.stdout, "guard: rolls back if more than %v%% of the shared requests fail within %s\n", ep.Guard.ErrorRate, ep.Guard.Window)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&sticky, "sticky", "none", "keep each client on its origin: cookie or none")
	f.StringVar(&header, "header", "", "a request header whose value (an origin) picks the origin, for testers (e.g. X-Berth-Origin)")
	f.StringVar(&rate, "guard-error-rate", "", "roll back when more than this share of the shifted requests fails (default 1%)")
	f.StringVar(&window, "guard-window", "", "the span the error rate is measured over (default 30s)")
	f.BoolVar(&noGuard, "no-guard", false, "no automatic rollback")
	f.BoolVar(&force, "force", false, "shift even if an origin does not answer now")
	return cmd
}

func (c *cli) edgeMaintenanceCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "maintenance ENTRYPOINT on|off",
		Short: "Answer every request of an entrypoint with its maintenance page (503), or stop",
		Args:  exactArgs("ENTRYPOINT", "on|off"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var on bool
			switch args[1] {
			case "on":
				on = true
			case "off":
			default:
				return invalidf("invalid %q: expected on or off", args[1])
			}
			if c.envName() != "" {
				return c.errMaintenanceOnAWS()
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			ep, err := cl.EdgeMaintenance(cmd.Context(), args[0], on)
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(c.stdout, ep)
			}
			if on {
				fmt.Fprintf(c.stdout, "%s: maintenance on: every request gets the maintenance page\n", ep.Name)
			} else {
				fmt.Fprintf(c.stdout, "%s: maintenance off: traffic goes to %s\n", ep.Name, ep.Origin)
			}
			return nil
		},
	}
}

func (c *cli) edgeInvalidateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "invalidate ENTRYPOINT PATH-PATTERN",
		Short: "Drop an entrypoint's cached responses for a path, or a prefix ending in *",
		Example: `  berth edge invalidate www /index.html
  berth edge invalidate www '/static/*'
  berth edge invalidate www '/*'`,
		Args: exactArgs("ENTRYPOINT", "PATH-PATTERN"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if c.envName() != "" {
				return c.edgeInvalidateAWS(cmd, args[0], args[1])
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			res, err := cl.EdgeInvalidate(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(c.stdout, res)
			}
			fmt.Fprintf(c.stdout, "%s: %d cached response(s) dropped\n", args[0], res.Removed)
			return nil
		},
	}
}

func (c *cli) edgeRotateSecretCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rotate-secret --env ENV",
		Short: "Replace the secret header CloudFront sends the app's load balancer (AWS)",
		Long: `Replace the origin secret of an AWS environment: the value of the
X-Berth-Origin-Secret header that the app's CloudFront distributions send
and its load balancer requires, so that only CloudFront reaches it. No
request is refused on the way: the load balancer accepts the old and the
new value until every distribution sends the new one and is deployed, then
the new one alone. A rotation that was cut off is finished first; deploys
meanwhile keep both values accepted. The secret lives in Secrets Manager
(berth/ENV/APP/edge-origin-secret) and is never printed.`,
		Example: `  berth edge rotate-secret --env prod`,
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			if c.envName() == "" {
				return invalidf("berth edge rotate-secret needs --env: the origin secret guards the load balancer of an AWS environment; the local edge has none")
			}
			b, err := c.awsEdge(cmd)
			if err != nil {
				return err
			}
			finished, err := b.env.RotateEdgeSecret(cmd.Context(), b.sp, c.stderr)
			if err != nil {
				return awsError(err)
			}
			if c.json {
				return printJSON(c.stdout, map[string]bool{"rotated": true, "finished_interrupted": finished})
			}
			fmt.Fprintf(c.stdout, "origin secret of %s (%s) rotated: the load balancer accepts the new value only\n", b.sp.App, c.envName())
			return nil
		},
	}
}

// parsePercent reads "10", "10%" or "12.5" as a percentage from 0 to 100.
func parsePercent(s string) (float64, error) {
	p, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "%"), 64)
	if err != nil || p != p || p < 0 || p > 100 {
		return 0, fmt.Errorf("not a percentage from 0 to 100: %q", s)
	}
	return p, nil
}

func sharesText(ss []api.Share) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = fmt.Sprintf("%s=%v%%", s.Origin, s.Percent)
	}
	return strings.Join(parts, " ")
}

func entrypointState(ep api.Entrypoint) string {
	switch {
	case ep.Maintenance:
		return "maintenance"
	case len(ep.Shares) > 0:
		return "shifting"
	case ep.Rollback != nil:
		return "rolled back"
	}
	return "serving"
}

func printEntrypoint(w io.Writer, ep api.Entrypoint) {
	t := newTable(w)
	t.row("name:", ep.Name)
	t.row("app:", ep.App)
	t.row("urls:", strings.Join(ep.URLs, " "))
	origin := ep.Origin
	if ep.SpecOrigin != "" && ep.SpecOrigin != ep.Origin {
		origin += " (switched; berth.yaml says " + ep.SpecOrigin + ")"
	}
	t.row("origin:", origin)
	if len(ep.Shares) > 0 {
		t.row("shift:", sharesText(ep.Shares)+", sticky "+ep.Sticky)
		if ep.Header != "" {
			t.row("header:", ep.Header)
		}
		if ep.Guard != nil {
			t.row("guard:", fmt.Sprintf("%v%% errors within %s", ep.Guard.ErrorRate, ep.Guard.Window))
		} else {
			t.row("guard:", "off")
		}
	}
	if ep.Failover != nil {
		codes := make([]string, len(ep.Failover.On))
		for i, c := range ep.Failover.On {
			codes[i] = strconv.Itoa(c)
		}
		t.row("failover:", ep.Failover.Origin+" on connection failures, "+orDash(strings.Join(codes, ",")))
	}
	for _, r := range ep.Routes {
		line := r.Path + " -> " + orDash(r.Origin)
		if r.Timeout != "" {
			line += ", timeout " + r.Timeout
		}
		if r.MaxBody > 0 {
			line += ", max body " + strconv.FormatInt(r.MaxBody, 10)
		}
		t.row("route:", line)
	}
	if ep.Cache != nil {
		t.row("cache:", fmt.Sprintf("default ttl %s, %d hits, %d misses, %d objects", ep.Cache.DefaultTTL, ep.Cache.Hits, ep.Cache.Misses, ep.Cache.Objects))
	}
	state := "off"
	if ep.Maintenance {
		state = "on"
	}
	t.row("maintenance:", state)
	if ep.Rollback != nil {
		t.row("last rollback:", ep.Rollback.Time.Local().Format("2006-01-02 15:04:05")+": "+ep.Rollback.Reason)
	}
	t.flush()
}

// canaryFlags applies deploy's --canary and --promote to req.
func canaryFlags(req *api.DeployRequest, cmd *cobra.Command, canary string, promote, images bool) error {
	if promote && canary != "" {
		return usagef(cmd, "--canary and --promote exclude each other")
	}
	if promote {
		if images {
			return usagef(cmd, "--promote deploys nothing new: drop --image")
		}
		req.Promote = true
		return nil
	}
	if canary == "" {
		return nil
	}
	p, err := parsePercent(canary)
	if err != nil || p == 0 {
		return invalidf("invalid --canary %q: a percentage above 0 and at most 100, e.g. --canary 10", canary)
	}
	req.Canary = p
	return nil
}
