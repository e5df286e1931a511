package cli

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/berth-dev/berth/internal/aws/awsenv"
)

// moveCmd is berth move: a service carried between App Runner and Fargate
// behind its CloudFront entrypoints (awsenv/move.go), then berth.yaml
// rewritten to say where it runs.
func (c *cli) moveCmd() *cobra.Command {
	var (
		file      string
		to        string
		images    []string
		guard     time.Duration
		maxErrors float64
		deleteAR  bool
	)
	cmd := &cobra.Command{
		Use:   "move SERVICE --to fargate|apprunner | --delete-apprunner",
		Short: "Move a service between App Runner and Fargate behind its entrypoints, with no DNS change",
		Long: `Move a service of an AWS environment (--env) between App Runner and ECS
Fargate behind the same CloudFront entrypoints, with no DNS change.

--to fargate deploys the service on Fargate from the same spec and waits until
it is healthy behind the load balancer, switches each entrypoint whose origin
is the App Runner service's URL to the service, watches the target group's
health and its 5XX share in CloudWatch for --guard and switches back by itself
when more than --max-error-rate of the probes fail or of the answers are 5XX,
then pauses the App Runner service (kept for the way back). --to apprunner
resumes it, switches the entrypoints back to its URL, guards, and stops the
Fargate tasks. berth.yaml is rewritten: the
apprunner: line removed or put back, the entrypoints' origin: set.

--delete-apprunner deletes the App Runner service once the service serves on
Fargate and no entrypoint names its URL: after the move with --to fargate,
or alone later. The way back goes with it.`,
		Example: `  berth move --env prod web --to fargate
  berth move --env prod web --to fargate --guard 5m --max-error-rate 0.05
  berth move --env prod web --to apprunner
  berth move --env prod web --delete-apprunner`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if c.envName() == "" {
				return invalidf("move runs on an AWS environment: pass --env ENV")
			}
			switch {
			case deleteAR && to == "":
				return c.deleteAppRunner(cmd, args[0])
			case deleteAR && to == awsenv.MoveToAppRunner:
				return invalidf("--delete-apprunner goes with --to fargate (or alone, after a move to Fargate), not --to apprunner")
			}
			if to != awsenv.MoveToFargate && to != awsenv.MoveToAppRunner {
				return invalidf("--to %q: write --to fargate or --to apprunner", to)
			}
			req, err := c.deployRequest(file, nil, images)
			if err != nil {
				return err
			}
			b, err := c.awsEdge(cmd)
			if err != nil {
				return err
			}
			p := &streamPrinter{w: c.stdout, json: c.json, logIndent: "    "}
			res, moved := b.env.Move(cmd.Context(), b.sp, args[0], to,
				awsenv.MoveOptions{Guard: guard, MaxErrorRate: maxErrors, Images: req.Images}, p.print)
			if _, err := streamResult(res, p.print); err != nil {
				return err
			}
			changes, err := rewriteMoved(req.File, moved)
			if err != nil {
				return fmt.Errorf("%s moved, but %s was not rewritten (%w); edit it by hand: %s", args[0], req.File, err, strings.Join(changes, "; "))
			}
			if !c.json {
				printDeployed(c.stdout, res.Deployed)
				for _, ch := range changes {
					fmt.Fprintf(c.stdout, "%s: %s\n", req.File, ch)
				}
			}
			if deleteAR {
				return c.deleteAppRunner(cmd, args[0])
			}
			return nil
		},
	}
	addFileFlag(cmd, &file, true)
	cmd.Flags().StringVar(&to, "to", "", "where the service goes: fargate or apprunner")
	cmd.Flags().StringArrayVar(&images, "image", nil, "deploy SERVICE on Fargate with image REF instead of the spec's (SERVICE=REF)")
	cmd.Flags().DurationVar(&guard, "guard", awsenv.DefaultGuard, "how long to watch the new origin's health and answers after the switch")
	cmd.Flags().Float64Var(&maxErrors, "max-error-rate", awsenv.DefaultMaxErrorRate, "share of failed health probes, or of 5XX answers (0-1), above which the guard switches back")
	cmd.Flags().BoolVar(&deleteAR, "delete-apprunner", false, "delete the App Runner service after the move, or alone: the one a move to Fargate paused")
	c.addLockWaitFlag(cmd)
	return cmd
}

// rewriteMoved carries a move into the spec file: the service's apprunner:
// line removed (to Fargate) or put back (to App Runner), and the switched
// entrypoints' origin: set. The rest keeps its keys, order and comments.
// It answers what changed, one line each.
func rewriteMoved(file string, m *awsenv.Moved) ([]string, error) {
	if m == nil {
		return nil, nil
	}
	var changes []string
	if m.To == awsenv.MoveToFargate {
		changes = append(changes, fmt.Sprintf("removed apprunner: %s from service %s (it runs on Fargate)", m.AppRunnerARN, m.Service))
	} else {
		changes = append(changes, fmt.Sprintf("put back apprunner: %s in service %s (it runs on App Runner)", m.AppRunnerARN, m.Service))
	}
	for _, n := range m.Entrypoints {
		changes = append(changes, fmt.Sprintf("entrypoint %s: origin: %s", n, m.Origin))
	}
	text, err := os.ReadFile(file)
	if err != nil {
		return changes, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(text, &doc); err != nil {
		return changes, err
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return changes, fmt.Errorf("the top level is not a map of keys")
	}
	root := doc.Content[0]
	svc := mapValue(mapValue(root, "services"), m.Service)
	if svc == nil || svc.Kind != yaml.MappingNode {
		return changes, fmt.Errorf("no service %s under services:", m.Service)
	}
	if m.To == awsenv.MoveToFargate {
		for i := 0; i+1 < len(svc.Content); i += 2 {
			if svc.Content[i].Value == "apprunner" {
				svc.Content = append(svc.Content[:i], svc.Content[i+2:]...)
				break
			}
		}
	} else {
		setKey(svc, "apprunner", m.AppRunnerARN)
	}
	edge := mapValue(root, "edge")
	for _, n := range m.Entrypoints {
		if ep := mapValue(edge, n); ep != nil && ep.Kind == yaml.MappingNode {
			setKey(ep, "origin", m.Origin)
		}
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(specIndent(text))
	if err := enc.Encode(&doc); err != nil {
		return changes, err
	}
	if err := enc.Close(); err != nil {
		return changes, err
	}
	st, err := os.Stat(file)
	if err != nil {
		return changes, err
	}
	return changes, os.WriteFile(file, out.Bytes(), st.Mode().Perm())
}

// mapValue is the value of key in the mapping node n, or nil.
func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// setKey sets key to the string v in the mapping node n, added at its end
// when absent.
func setKey(n *yaml.Node, key, v string) {
	if cur := mapValue(n, key); cur != nil {
		cur.Kind, cur.Tag, cur.Value, cur.Style, cur.Content = yaml.ScalarNode, "!!str", v, 0, nil
		return
	}
	n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v})
}

// specIndent is the indentation the spec text uses: the column of its
// first indented key (2 when none).
func specIndent(text []byte) int {
	for _, line := range bytes.Split(text, []byte("\n")) {
		trimmed := bytes.TrimLeft(line, " ")
		if n := len(line) - len(trimmed); n > 0 && len(trimmed) > 0 && trimmed[0] != '#' && trimmed[0] != '-' {
			return n
		}
	}
	return 2
}

// deleteAppRunner deletes the App Runner service service moved from, with
// the spec as it is on disk now (rewritten by a move just made).
func (c *cli) deleteAppRunner(cmd *cobra.Command, service string) error {
	b, err := c.awsEdge(cmd)
	if err != nil {
		return err
	}
	arn, err := b.env.DeleteAppRunner(cmd.Context(), b.sp, service, c.stderr)
	if err != nil {
		return awsError(err)
	}
	if c.json {
		return printJSON(c.stdout, map[string]string{"service": service, "apprunner_deleted": arn})
	}
	fmt.Fprintf(c.stdout, "App Runner service %s deleted; %s serves on Fargate\n", arn, service)
	return nil
}
