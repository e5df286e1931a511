package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/attach"
	"github.com/berth-dev/berth/internal/client"
)

// exitTimeout is what `berth task run --timeout` exits with when the task
// ran out of time, as timeout(1) does: the task's own code (143 after
// SIGTERM, 137 after SIGKILL) would not say that berth stopped it.
const exitTimeout = 124

func (c *cli) taskCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "task",
		Short: "Run one-off tasks and see their history",
		Long: `A task runs a command in a fresh container from a service's serving revision:
the same image, env, secrets and private network (it reaches the app's
services by name). Its container is removed when it ends; its exit code and
the tail of its output are kept. Release commands and scheduled tasks of the
spec are tasks too, and show in "berth task ls".`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(c.taskRunCmd(), c.taskListCmd(), c.taskLogsCmd(), c.taskStopCmd())
	return cmd
}

func (c *cli) taskRunCmd() *cobra.Command {
	var (
		file   string
		req    api.TaskRunRequest
		detach bool
	)
	cmd := &cobra.Command{
		Use:   "run [--service S] [--detach] [--timeout D] [-it] (TASKNAME [-- ARGS...] | -- CMD ARGS...)",
		Short: "Run a task: a named task of the spec, or a command",
		Long: `Run a named task of the spec's tasks: (extra arguments after --), or any
command after --, in a new container of a service's serving revision. Its
output streams here as it comes, and berth exits with the task's own exit
code (124 when --timeout stopped it). Ctrl-C stops the task. --detach prints
the task's ID and returns while it runs on.

The service is --service, else the named task's, else the app's only
deployed service, else the spec's first.`,
		Example: `  berth task run -- ./server migrate
  berth task run migrate
  berth task run migrate -- --dry-run
  berth task run --detach --timeout 30m -- ./server backfill
  berth task run -it -- sh`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := taskArgs(cmd, args, &req); err != nil {
				return err
			}
			if req.Timeout < 0 {
				return invalidf("invalid --timeout %s: expected a positive duration like 30s or 10m", req.Timeout)
			}
			if detach && (req.Stdin || req.TTY) {
				return invalidf("--detach and -i/-t exclude each other: a detached task has no terminal")
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
			switch {
			case detach:
				t, err := cl.RunTaskDetached(ctx, app, req)
				if err != nil {
					return err
				}
				if c.json {
					return printJSON(c.stdout, t)
				}
				fmt.Fprintln(c.stdout, t.ID)
				return nil
			case req.Stdin || req.TTY:
				conn, err := cl.AttachTask(ctx, app, req)
				if err != nil {
					return err
				}
				res, err := c.session(ctx, conn, req.TTY, req.Stdin)
				if errors.Is(err, attach.ErrBroken) {
					return taskOutcomeUnknown(res.ID, err)
				}
				if err != nil {
					return err
				}
				if res.Note != "" {
					// berth ended it (a timeout, a stop): the record says which.
					if t, err := cl.Task(context.WithoutCancel(ctx), res.ID); err == nil {
						return taskExit(t)
					}
					return exitError{code: nonZero(res.Code), msg: res.Note}
				}
				return exitWith(res.Code, "")
			}
			var taskID string // from the "task" message, once it started
			res, err := cl.RunTask(ctx, app, req, func(m api.Message) {
				if m.Kind == api.KindTask && m.Task != nil {
					taskID = m.Task.ID
				}
				c.printTaskMessage(m)
			})
			var re *client.ResultError
			if errors.As(err, &re) && re.Result.Task != nil {
				return exitError{code: nonZero(re.Result.Task.ExitCode), msg: re.Error()}
			}
			if err != nil {
				return taskOutcomeUnknown(taskID, err)
			}
			if res.Task == nil {
				return fmt.Errorf("the berth daemon did not say how the task ended: check \"berth task ls\"")
			}
			return taskExit(*res.Task)
		},
	}
	addFileFlag(cmd, &file, true)
	f := cmd.Flags()
	f.StringVar(&req.Service, "service", "", "the service whose revision the task runs (see above for the default)")
	f.BoolVarP(&detach, "detach", "d", false, "print the task ID and return; the task runs on (see berth task logs)")
	f.DurationVar(&req.Timeout, "timeout", 0, "stop the task after this long, e.g. 30s or 10m")
	f.BoolVarP(&req.Stdin, "interactive", "i", false, "send this terminal's (or pipe's) input to the task")
	f.BoolVarP(&req.TTY, "tty", "t", false, "give the task a terminal; -it for a shell or a REPL")
	return cmd
}

// taskOutcomeUnknown turns the loss of the daemon while `berth task run`
// streams a task into a message that says the task's outcome is unknown (a
// daemon killed mid-task may have left it running, or a restarted one
// stopped it) and how to see it, rather than a bare connection error. As
// for a deploy (outcomeUnknown), known outcomes and a daemon never reached
// are returned as they are.
func taskOutcomeUnknown(taskID string, err error) error {
	if outcomeKnown(err) {
		return err
	}
	see := "`berth task ls`"
	if taskID != "" {
		see = fmt.Sprintf("`berth task logs %s` or `berth task ls`", taskID)
	}
	return fmt.Errorf("lost the connection to berth server while the task ran (%v); %w: see %s",
		err, errOutcomeUnknown, see)
}

// taskArgs reads TASKNAME [-- ARGS...] or -- CMD ARGS... into req.
func taskArgs(cmd *cobra.Command, args []string, req *api.TaskRunRequest) error {
	switch dash := cmd.ArgsLenAtDash(); {
	case dash == -1 && len(args) == 0:
		return usagef(cmd, "missing TASKNAME or -- CMD ARGS")
	case dash == -1 && len(args) > 1:
		return usagef(cmd, "a command goes after --: berth task run -- %s", strings.Join(args, " "))
	case dash == -1:
		req.Name = args[0]
	case dash == 0:
		if len(args) == 0 || args[0] == "" {
			return invalidf("empty command: put it after --, e.g. berth task run -- ./server migrate")
		}
		req.Command = args
	case dash == 1:
		req.Name, req.Command = args[0], args[1:]
	default:
		return usagef(cmd, "one TASKNAME before --, not %q", strings.Join(args[:dash], " "))
	}
	return nil
}

// printTaskMessage prints a running task's stream: its output on stdout and
// stderr as the task wrote it, or every message as NDJSON with --json.
func (c *cli) printTaskMessage(m api.Message) {
	if c.json {
		(&streamPrinter{w: c.stdout, json: true}).print(m)
		return
	}
	if m.Kind != api.KindLog {
		return
	}
	if m.Stream == "stderr" {
		fmt.Fprintln(c.stderr, m.Text)
		return
	}
	fmt.Fprintln(c.stdout, m.Text)
}

// taskExit is how the CLI ends after a task: its own exit code, with a
// one-line reason when it is not 0.
func taskExit(t api.Task) error {
	switch t.Status {
	case api.TaskSucceeded:
		return nil
	case api.TaskFailed:
		if strings.HasPrefix(t.Message, "could not start") {
			return exitError{code: nonZero(t.ExitCode), msg: fmt.Sprintf("task %s %s", t.ID, t.Message)}
		}
		return exitError{code: nonZero(t.ExitCode), msg: fmt.Sprintf("task %s exited with code %d", t.ID, t.ExitCode)}
	case api.TaskTimeout:
		return exitError{code: exitTimeout, msg: fmt.Sprintf("task %s %s and was stopped (exit code %d)", t.ID, t.Message, t.ExitCode)}
	case api.TaskStopped:
		return exitError{code: nonZero(t.ExitCode), msg: fmt.Sprintf("task %s %s (exit code %d)", t.ID, t.Message, t.ExitCode)}
	}
	return exitError{code: exitFailure, msg: fmt.Sprintf("task %s %s: %s", t.ID, t.Status, t.Message)}
}

func nonZero(code int) int {
	if code == 0 {
		return exitFailure
	}
	return code
}

func (c *cli) taskListCmd() *cobra.Command {
	var (
		file  string
		limit int
	)
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List an app's tasks, newest first",
		Long: `List the tasks of the app in ./berth.yaml (or -f FILE, or --app APP), or of
every app when there is none: one-off, release and scheduled runs, with their
status, exit code, start and duration.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 0 {
				return invalidf("invalid --limit %d: expected a number of tasks", limit)
			}
			app, err := c.taskListApp(cmd, file)
			if err != nil {
				return err
			}
			cl, err := c.backend(cmd)
			if err != nil {
				return err
			}
			ts, err := cl.Tasks(cmd.Context(), app, limit)
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(c.stdout, ts)
			}
			now := time.Now()
			header := []string{"ID", "SERVICE", "KIND", "TASK", "STATUS", "EXIT", "STARTED", "DURATION"}
			if app == "" {
				header = append([]string{"APP"}, header...)
			}
			tb := newTable(c.stdout, header...)
			for _, t := range ts {
				row := []string{t.ID, t.Service, t.Kind, taskName(t), t.Status, exitCell(t), age(now, t.StartedAt) + " ago", duration(now, t)}
				if app == "" {
					row = append([]string{t.App}, row...)
				}
				tb.row(row...)
			}
			tb.flush()
			return nil
		},
	}
	addFileFlag(cmd, &file, true)
	cmd.Flags().IntVar(&limit, "limit", 0, "show at most N tasks (default 100)")
	return cmd
}

// taskListApp is --app, else the spec file's app, else "" (every app).
func (c *cli) taskListApp(cmd *cobra.Command, file string) (string, error) {
	if c.app != "" {
		return c.app, nil
	}
	name, err := appInFile(file)
	switch {
	case err == nil:
		return name, nil
	case errors.Is(err, fs.ErrNotExist) && !cmd.Flags().Changed("file"):
		return "", nil
	case errors.Is(err, fs.ErrNotExist):
		return "", invalidf("cannot read %s: no such file (check -f FILE)", file)
	}
	return "", fmt.Errorf("read %s: %w", file, err)
}

// taskName is a task's spec name, else its command, cut to fit a table.
func taskName(t api.Task) string {
	s := t.Name
	if s == "" {
		s = strings.Join(t.Command, " ")
	}
	if r := []rune(s); len(r) > 40 {
		s = string(r[:39]) + "…"
	}
	return orDash(s)
}

func exitCell(t api.Task) string {
	if t.Status == api.TaskRunning || t.Status == api.TaskSkipped || t.Status == api.TaskLost {
		return "-"
	}
	return strconv.Itoa(t.ExitCode)
}

// duration is how long a task ran, or has been running.
func duration(now time.Time, t api.Task) string {
	if t.StartedAt.IsZero() || t.Status == api.TaskSkipped {
		return "-"
	}
	end := t.FinishedAt
	if end.IsZero() {
		end = now
	}
	d := end.Sub(t.StartedAt)
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func (c *cli) taskLogsCmd() *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs ID",
		Short: "Print a task's output",
		Long: `Print a task's output: from its container while it runs (-f: until it ends),
from the kept tail (the last 1MiB) once it has finished. ID may be a unique
prefix of 4 or more characters.`,
		Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.backend(cmd)
			if err != nil {
				return err
			}
			err = cl.TaskLogs(cmd.Context(), args[0], follow, c.printTaskMessage)
			if follow && followInterrupted(err) {
				return nil
			}
			return err
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing until the task ends")
	return cmd
}

func (c *cli) taskStopCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stop ID",
		Short: "Stop a running task (SIGTERM, then SIGKILL after 10s)",
		Args:  exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.backend(cmd)
			if err != nil {
				return err
			}
			t, err := cl.StopTask(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(c.stdout, t)
			}
			switch t.Status {
			case api.TaskStopped:
				fmt.Fprintf(c.stdout, "stopped task %s (exit code %d)\n", t.ID, t.ExitCode)
			case api.TaskRunning:
				fmt.Fprintf(c.stdout, "stopping task %s; see \"berth task ls\"\n", t.ID)
			default:
				fmt.Fprintf(c.stdout, "task %s had already ended: %s\n", t.ID, t.Status)
			}
			return nil
		},
	}
	return cmd
}
