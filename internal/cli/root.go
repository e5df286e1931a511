package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/client"
)

// cli is one run of the command line: its streams and global flags.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	host string // --host; "" means client.DefaultHost()
	json bool   // --json
	app  string // --app
	env  string // --env; "" means BERTH_ENV, else the local engine

	lockWait time.Duration // --lock-wait of deploy and rollback (AWS environments)
}

// Main runs the berth command line with args (without the program name) and
// returns the process's exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := interruptible(context.Background())
	defer stop()
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr}
	root := c.rootCmd()
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		return c.report(err)
	}
	return 0
}

// interruptible returns a context cancelled with errInterrupted on SIGINT or
// SIGTERM. After the first signal the default handling is restored, so a
// second Ctrl-C kills at once.
func interruptible(parent context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-sigs:
			signal.Stop(sigs)
			cancel(fmt.Errorf("%w by %v", errInterrupted, s))
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel(context.Canceled)
	}
}

func (c *cli) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "berth",
		Short: "Run containerised apps on one machine, the App Runner way",
		Long: `berth runs the services of a berth.yaml on the local Docker Engine behind
an edge proxy, at http://SERVICE.APP.DOMAIN. "berth server" is the daemon;
every other verb talks to it (--host, BERTH_HOST, else the default socket).`,
		SilenceErrors: true,
		SilenceUsage:  true,
		// An unknown verb lands here; a bare "berth" prints the help.
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			msg := fmt.Sprintf("unknown command %q", args[0])
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += fmt.Sprintf(" (did you mean %q?)", s[0])
			}
			return usageError{msg + `: see "berth --help"`}
		},
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	root.SuggestionsMinimumDistance = 2
	root.SetIn(c.stdin)
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageError{fmt.Sprintf("%v: see \"%s --help\"", err, cmd.CommandPath())}
	})
	pf := root.PersistentFlags()
	pf.StringVar(&c.host, "host", "", "daemon address: unix:///path/berth.sock or tcp://HOST:PORT (env BERTH_HOST; token in BERTH_TOKEN, CA in BERTH_CA)")
	pf.BoolVar(&c.json, "json", false, "machine-readable output: the API's JSON (streams as NDJSON)")
	pf.StringVar(&c.app, "app", "", "the app a verb acts on, when not the one in ./berth.yaml")
	pf.StringVar(&c.env, "env", "", "the environment of berth.yaml a verb acts on, such as an AWS one (env BERTH_ENV; default: the local engine)")
	root.AddCommand(
		c.serverCmd(),
		c.deployCmd(),
		c.statusCmd(),
		c.revisionsCmd(),
		c.rollbackCmd(),
		c.logsCmd(),
		c.scaleCmd(),
		c.pauseCmd(),
		c.resumeCmd(),
		c.destroyCmd(),
		c.secretCmd(),
		c.eventsCmd(),
		c.caCmd(),
		c.taskCmd(),
		c.execCmd(),
		c.edgeCmd(),
		c.planCmd(),
		c.checkCmd(),
		c.importCmd(),
		c.moveCmd(),
		c.uiCmd(),
	)
	return root
}

// client connects to the daemon named by --host, BERTH_HOST or the default
// socket.
func (c *cli) client() (*client.Client, error) {
	host := c.host
	if host == "" {
		host = client.DefaultHost()
	}
	return client.New(host, os.Getenv("BERTH_TOKEN"), os.Getenv("BERTH_CA"))
}

// exactArgs accepts exactly the named positional arguments.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < len(names) {
			return usagef(cmd, "missing %s", strings.Join(names[len(args):], " "))
		}
		if len(args) > len(names) {
			return usagef(cmd, "unexpected argument %q", args[len(names)])
		}
		return nil
	}
}

// minArgs accepts the named positional arguments and more of the last kind.
func minArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < len(names) {
			return usagef(cmd, "missing %s", strings.Join(names[len(args):], " "))
		}
		return nil
	}
}

// followInterrupted reports whether err only says that the user stopped a
// followed stream (logs -f, events -f), which is how those end.
func followInterrupted(err error) bool {
	return errors.Is(err, errInterrupted)
}
