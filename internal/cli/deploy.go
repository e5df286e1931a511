package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/spec"
)

func (c *cli) deployCmd() *cobra.Command {
	var (
		file    string
		images  []string
		detach  bool
		canary  string
		promote bool
	)
	cmd := &cobra.Command{
		Use:   "deploy [SERVICE...]",
		Short: "Deploy the spec's services (all, or those named)",
		Long: `Deploy the services of berth.yaml (or -f FILE): build or resolve each image,
run the release command, start the new instances, wait until they are
healthy, switch traffic and drain the old ones. Each phase is printed as it
happens. The command exits 0 only when the new revision serves all traffic;
a failed deploy leaves the previous revision serving and prints why.`,
		Example: `  berth deploy
  berth deploy web --image web=shop-web:1.5
  berth deploy -f staging.yaml --detach`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var flags api.DeployRequest // --canary, --promote (edge.go)
			if err := canaryFlags(&flags, cmd, canary, promote, len(images) > 0); err != nil {
				return err
			}
			req, err := c.deployRequest(file, args, images)
			if err != nil {
				return err
			}
			req.Canary, req.Promote = flags.Canary, flags.Promote
			cl, err := c.backend(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithCancelCause(cmd.Context())
			defer cancel(nil)
			p := &streamPrinter{w: c.stdout, json: c.json, logIndent: "    "}
			res, err := cl.Deploy(ctx, req, func(m api.Message) {
				p.print(m)
				if detach && m.Kind != api.KindResult {
					// The daemon runs the deploy under its own lifetime, so
					// hanging up here does not stop it.
					cancel(errDetached)
				}
			})
			if errors.Is(err, errDetached) {
				if !c.json {
					fmt.Fprintln(c.stdout, `detached: the deploy goes on in the daemon; follow it with "berth events -f" or "berth status"`)
				}
				return nil
			}
			if err != nil {
				what := "SERVICE"
				if len(args) == 1 {
					what = args[0]
				} else if sp, perr := spec.Parse(req.File, []byte(req.YAML)); perr == nil && len(args) == 0 && len(sp.ServiceOrder) == 1 {
					what = sp.ServiceOrder[0]
				}
				return outcomeUnknown("deploy", what, err)
			}
			if !c.json {
				printDeployed(c.stdout, res.Deployed)
			}
			return nil
		},
	}
	addFileFlag(cmd, &file, true)
	cmd.Flags().StringArrayVar(&images, "image", nil, "deploy SERVICE with image REF instead of the spec's (SERVICE=REF, repeatable)")
	cmd.Flags().BoolVar(&detach, "detach", false, "return once the daemon has started the deploy")
	cmd.Flags().StringVar(&canary, "canary", "", "deploy as a canary: the new revision gets PERCENT of the traffic, the serving one the rest until --promote")
	cmd.Flags().BoolVar(&promote, "promote", false, "move all traffic to the services' canaries and retire the previous revisions")
	c.addLockWaitFlag(cmd)
	return cmd
}

// deployRequest reads the spec and the command line into a DeployRequest.
// The daemon validates the spec itself, so its errors name the file and
// line as the user wrote them.
func (c *cli) deployRequest(file string, services, images []string) (api.DeployRequest, error) {
	b, err := readSpec(file)
	if errors.Is(err, fs.ErrNotExist) {
		return api.DeployRequest{}, invalidf("cannot read %s: no such file (run berth in the app's directory or pass -f FILE)", file)
	}
	if err != nil {
		return api.DeployRequest{}, err
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return api.DeployRequest{}, fmt.Errorf("locate %s: %w", file, err)
	}
	if c.app != "" {
		if name, _ := appInFile(file); name != "" && name != c.app {
			return api.DeployRequest{}, invalidf("--app %s conflicts with app %s in %s: deploy deploys the spec's app", c.app, name, file)
		}
	}
	req := api.DeployRequest{File: file, BaseDir: filepath.Dir(abs), YAML: string(b), Services: services}
	for _, im := range images {
		svc, ref, ok := strings.Cut(im, "=")
		if !ok || svc == "" || ref == "" {
			return api.DeployRequest{}, invalidf("invalid --image %q: expected SERVICE=REF", im)
		}
		if req.Images == nil {
			req.Images = map[string]string{}
		}
		if _, dup := req.Images[svc]; dup {
			return api.DeployRequest{}, invalidf("--image names %s twice", svc)
		}
		req.Images[svc] = ref
	}
	return req, nil
}

// readSpec reads the spec at file, refusing one larger than the daemon
// takes before reading or sending it: the daemon could only answer that its
// request body is too large, without naming the file or the limit.
func readSpec(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// One byte past the limit is enough to know; the file may also grow
	// between a stat and the read.
	b, err := io.ReadAll(io.LimitReader(f, spec.MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	if len(b) > spec.MaxSize {
		size := int64(len(b))
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			size = st.Size()
		}
		return nil, invalidf("%s: %s is larger than the %s limit for a spec", file, specSize(size), spec.FormatSize(spec.MaxSize))
	}
	return b, nil
}

// specSize renders a spec's size: in bytes when it is just over the limit,
// where a rounded "1.0MiB" would not say why it is too large.
func specSize(n int64) string {
	if n < spec.MaxSize+spec.MaxSize/10 {
		return fmt.Sprintf("%d bytes", n)
	}
	return spec.FormatSize(n)
}

// errOutcomeUnknown means the connection to the daemon broke while it ran a
// deploy or rollback: the daemon may have finished it, failed it or died in
// it (a restarted daemon settles what it left; see `berth events`).
var errOutcomeUnknown = errors.New("the outcome is unknown")

// outcomeUnknown turns the loss of the daemon in the middle of a deploy or
// rollback into a message that says so and how to find out what happened,
// rather than a bare connection error that reads as a failure. A daemon
// that could not be reached at all never began it, and a result (success
// or failure), an interrupt or a detach are known outcomes: those errors
// are returned as they are.
func outcomeUnknown(verb, service string, err error) error {
	if outcomeKnown(err) {
		return err
	}
	return fmt.Errorf("lost the connection to berth server during the %s (%v); %w: run `berth status` or `berth revisions %s`",
		verb, err, errOutcomeUnknown, service)
}

// outcomeKnown reports whether err says how an operation ended, or that it
// never began: the daemon answered (a result, or a refusal such as "not
// found" before anything ran), could not be reached, or the user stopped
// waiting. Any other error is a connection lost midway.
func outcomeKnown(err error) bool {
	var (
		resErr *client.ResultError
		apiErr *client.APIError
	)
	return errors.As(err, &resErr) || errors.As(err, &apiErr) || errors.Is(err, client.ErrDaemonUnreachable) ||
		errors.Is(err, errInterrupted) || errors.Is(err, errDetached) || errors.Is(err, context.Canceled)
}
