package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/aws/awsenv"
	"github.com/berth-dev/berth/internal/aws/cdn"
)

// The edge verbs with --env: an entrypoint of an AWS environment is a
// CloudFront distribution (awsenv/edge.go). They print what the local
// verbs print, and --json gives the local shape with the distribution
// added ("distribution"); a shift also says how it was carried out.

// awsEdge opens the AWS environment of --env for an edge verb.
func (c *cli) awsEdge(cmd *cobra.Command) (*awsBackend, error) {
	b, err := c.backend(cmd)
	if err != nil {
		return nil, err
	}
	ab, ok := b.(*awsBackend)
	if !ok {
		return nil, fmt.Errorf("--env %s is not an AWS environment", c.envName())
	}
	return ab, nil
}

func (c *cli) edgeLsAWS(cmd *cobra.Command) error {
	b, err := c.awsEdge(cmd)
	if err != nil {
		return err
	}
	eps, err := b.env.EdgeList(cmd.Context(), b.sp)
	if err != nil {
		return awsError(err)
	}
	if c.json {
		return printJSON(c.stdout, eps)
	}
	if len(eps) == 0 {
		fmt.Fprintln(c.stdout, "no entrypoints: declare them in the edge: section of berth.yaml")
		return nil
	}
	t := newTable(c.stdout, "NAME", "APP", "HOSTS", "ORIGIN", "SHARES", "STATE", "DISTRIBUTION")
	for _, ep := range eps {
		state, dist := "not created", "-"
		if d := ep.Distribution; d != nil {
			state, dist = entrypointState(ep.Entrypoint)+" ("+d.Status+")", d.DistributionID+" "+d.DomainName
		}
		t.row(ep.Name, ep.App, strings.Join(ep.Hosts, ","), orDash(ep.Origin), orDash(sharesText(ep.Shares)), state, dist)
	}
	t.flush()
	return nil
}

func (c *cli) edgeShowAWS(cmd *cobra.Command, name string) error {
	b, err := c.awsEdge(cmd)
	if err != nil {
		return err
	}
	ep, err := b.env.EdgeShow(cmd.Context(), b.sp, name)
	if err != nil {
		return awsError(err)
	}
	if c.json {
		return printJSON(c.stdout, ep)
	}
	printAWSEntrypoint(c, ep)
	return nil
}

func printAWSEntrypoint(c *cli, ep awsenv.Entrypoint) {
	printEntrypoint(c.stdout, ep.Entrypoint)
	d := ep.Distribution
	if d == nil {
		return
	}
	t := newTable(c.stdout)
	t.row("distribution:", d.DistributionID+" ("+d.Status+")")
	for _, o := range d.Origins {
		line := o.Ref + " -> " + o.Domain
		if o.Active {
			line += " (active)"
		}
		if !o.Berth {
			line += " (not berth's)"
		}
		t.row("origin "+o.ID+":", line)
	}
	if s := d.Staging; s != nil {
		t.row("staging:", fmt.Sprintf("%v%% to %s (policy %s, enabled %t)", s.Percent, s.DomainName, s.PolicyID, s.Enabled))
	}
	t.flush()
}

func (c *cli) edgeSwitchAWS(cmd *cobra.Command, name, to string) error {
	b, err := c.awsEdge(cmd)
	if err != nil {
		return err
	}
	ep, err := b.env.EdgeSwitch(cmd.Context(), b.sp, name, to, c.stderr)
	if err != nil {
		return awsError(err)
	}
	if c.json {
		return printJSON(c.stdout, ep)
	}
	fmt.Fprintf(c.stdout, "%s: all traffic to %s (distribution %s deployed; no DNS change)\n", ep.Name, ep.Origin, ep.Distribution.DistributionID)
	return nil
}

// edgeShiftAWS shifts one origin's share; what CloudFront and the ALB
// cannot do of the local shift (several origins, stickiness by berth's
// cookie, the tester header, the guard) is refused by name.
func (c *cli) edgeShiftAWS(cmd *cobra.Command, name string, req api.ShiftRequest, guard bool) error {
	switch {
	case len(req.Shares) != 1:
		return invalidf("on AWS a shift sends a share to one origin: berth edge shift --env %s %s ORIGIN=PERCENT", c.envName(), name)
	case req.Sticky == "cookie":
		return invalidf("--sticky cookie is not available on AWS environments: CloudFront keeps a client on the staging distribution by its own cookie, the ALB by its stickiness")
	case req.Header != "":
		return invalidf("--header is not available on AWS environments")
	case guard:
		return invalidf("--guard-error-rate and --guard-window are not available on AWS environments: watch the errors and end the shift with berth edge switch")
	}
	var origin string
	var pct float64
	for o, p := range req.Shares {
		origin, pct = o, p
	}
	b, err := c.awsEdge(cmd)
	if err != nil {
		return err
	}
	s, err := b.env.EdgeShift(cmd.Context(), b.sp, name, origin, pct, c.stderr)
	if err != nil {
		return awsError(err)
	}
	if c.json {
		return printJSON(c.stdout, s)
	}
	fmt.Fprintf(c.stdout, "%s: %s=%v%%; %s keeps %v%%\n", s.Name, origin, pct, s.Shift.Active, 100-pct)
	switch s.Shift.Via {
	case cdn.ViaALB:
		fmt.Fprintf(c.stdout, "via: the load balancer's weighted target groups (rule %s); the distribution is unchanged\n", s.Shift.ALB.Rule)
	case cdn.ViaStaging:
		fmt.Fprintf(c.stdout, "via: a CloudFront continuous-deployment staging distribution %s (at most %d%%)\n", s.Shift.StagingDistributionID, cdn.MaxStagingPercent)
	}
	fmt.Fprintln(c.stdout, "guard: none on AWS; end the shift with berth edge switch")
	return nil
}

func (c *cli) edgeInvalidateAWS(cmd *cobra.Command, name, path string) error {
	b, err := c.awsEdge(cmd)
	if err != nil {
		return err
	}
	inv, err := b.env.EdgeInvalidate(cmd.Context(), b.sp, name, []string{path})
	if err != nil {
		return awsError(err)
	}
	if c.json {
		return printJSON(c.stdout, inv)
	}
	fmt.Fprintf(c.stdout, "%s: CloudFront invalidation %s of %s created (%s)\n", name, inv.ID, path, inv.Status)
	return nil
}

// errMaintenanceOnAWS refuses edge maintenance --env.
func (c *cli) errMaintenanceOnAWS() error {
	return invalidf("berth edge maintenance is not available on AWS environments: a CloudFront distribution has no maintenance switch berth drives; switch the entrypoint to an origin that serves the page (berth edge switch --env %s ENTRYPOINT --to https://...)", c.envName())
}
