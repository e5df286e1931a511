package cli

import (
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/aws/awsenv"
	"github.com/berth-dev/berth/internal/aws/ssmexec"
)

func (c *cli) execCmd() *cobra.Command {
	var (
		file string
		req  api.ExecRequest
	)
	cmd := &cobra.Command{
		Use:   "exec SERVICE [--instance ID] [--container NAME] [-it] -- CMD ARGS...",
		Short: "Run a command inside a running instance of a service",
		Long: `Run a command inside a running instance (--instance ID, else a healthy one)
of a service, and exit with its exit code. -i sends this terminal's (or
pipe's) input to it; -t gives it a terminal, with window resizes: -it for a
shell. Each exec is recorded as an event.`,
		Example: `  berth exec web -it -- sh
  berth exec web --instance 3f2a -- ./server check
  echo 'select 1' | berth exec db -i -- psql`,
		RunE: func(cmd *cobra.Command, args []string) error {
			dash := cmd.ArgsLenAtDash()
			switch {
			case len(args) == 0 || dash == 0:
				return usagef(cmd, "missing SERVICE")
			case dash == -1 && len(args) > 1:
				return usagef(cmd, "the command goes after --: berth exec %s -- %s", args[0], strings.Join(args[1:], " "))
			case dash > 1:
				return usagef(cmd, "one SERVICE before --, not %q", strings.Join(args[:dash], " "))
			}
			req.Command = args[1:]
			if len(req.Command) == 0 || req.Command[0] == "" {
				return invalidf("empty command: put it after --, e.g. berth exec %s -- sh", args[0])
			}
			if c.envName() != "" {
				return c.execOnAWS(cmd, args[0], req)
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			app, err := c.serviceApp(ctx, cmd, cl, file)
			if err != nil {
				return err
			}
			conn, err := cl.Exec(ctx, app, args[0], req)
			if err != nil {
				return err
			}
			res, err := c.session(ctx, conn, req.TTY, req.Stdin)
			if err != nil {
				return err
			}
			return exitWith(res.Code, res.Note)
		},
	}
	addFileFlag(cmd, &file, true)
	f := cmd.Flags()
	f.StringVar(&req.Instance, "instance", "", "the instance to run in (an ID or unique prefix; see berth status)")
	f.StringVar(&req.Container, "container", "", "a sidecar's name, to run in it instead of the main container")
	f.BoolVarP(&req.Stdin, "interactive", "i", false, "send this terminal's (or pipe's) input to the command")
	f.BoolVarP(&req.TTY, "tty", "t", false, "give the command a terminal; -it for a shell")
	return cmd
}

// execOnAWS runs berth exec on an AWS environment: ECS exec, its Session
// Manager data channel spoken by berth itself (internal/aws/ssmexec), the
// command's exit code berth's own.
func (c *cli) execOnAWS(cmd *cobra.Command, service string, req api.ExecRequest) error {
	b, err := c.backend(cmd)
	if err != nil {
		return err
	}
	ab, ok := b.(*awsBackend)
	if !ok {
		return errNotOnAWS("berth exec")
	}
	if ab.sp.Services[service] != nil && ab.sp.Services[service].AppRunner != "" {
		return invalidf("%s runs on App Runner, which has no exec into its instances; move it to Fargate first (berth check --env %s)", service, c.envName())
	}
	resizes, restore, err := c.terminal(req.TTY)
	if err != nil {
		return err
	}
	defer restore()
	sizes := make(chan ssmexec.Size, 1)
	if resizes != nil {
		go func() {
			for s := range resizes {
				select {
				case <-sizes:
				default:
				}
				sizes <- ssmexec.Size{Cols: s.Width, Rows: s.Height}
			}
		}()
	}
	var in io.Reader
	if req.Stdin {
		in = c.stdin
	}
	code, err := ab.env.Exec(cmd.Context(), service, awsenv.ExecRequest{
		Instance: req.Instance, Container: req.Container, Command: req.Command,
		Stdin: in, Stdout: c.stdout, TTY: req.TTY, Resize: sizes,
	})
	if err != nil {
		return awsError(err)
	}
	return exitWith(code, "")
}
