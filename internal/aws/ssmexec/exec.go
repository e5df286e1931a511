package ssmexec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// ECSAPI is the ECS call Exec makes; *ecs.Client meets it.
type ECSAPI interface {
	ExecuteCommand(ctx context.Context, in *ecs.ExecuteCommandInput, opts ...func(*ecs.Options)) (*ecs.ExecuteCommandOutput, error)
}

// Request is one command to run in a task's container.
type Request struct {
	Cluster   string
	Task      string // ARN or ID
	Container string
	Command   []string
	Stream
	// NoShell runs Command as it is, for images without sh: the exit code
	// is then unknown (Result.Known is false).
	NoShell bool
}

// Start calls ECS ExecuteCommand (interactive, the only mode ECS has) and
// runs the session's data channel.
func Start(ctx context.Context, api ECSAPI, r Request) (Result, error) {
	if len(r.Command) == 0 {
		return Result{}, errors.New("no command to run")
	}
	line := commandLine(r.Command)
	if !r.NoShell {
		r.Marker = newNonce()
		line = wrap(r.Command, r.Marker, r.TTY)
	}
	out, err := api.ExecuteCommand(ctx, &ecs.ExecuteCommandInput{
		Cluster: aws.String(r.Cluster), Task: aws.String(r.Task), Container: aws.String(r.Container),
		Command: aws.String(line), Interactive: true,
	})
	if err != nil {
		return Result{}, execError(r, err)
	}
	if out.Session == nil || aws.ToString(out.Session.StreamUrl) == "" {
		return Result{}, fmt.Errorf("ECS ExecuteCommand on task %s gave no session", r.Task)
	}
	return Run(ctx, Session{
		ID: aws.ToString(out.Session.SessionId), StreamURL: aws.ToString(out.Session.StreamUrl), Token: aws.ToString(out.Session.TokenValue),
	}, r.Stream)
}

// Exec runs argv in container of the task, wrapped to read its exit code
// back, and returns that code. A session that ends without it (the agent
// closed the channel before the command printed it) returns 0 and no
// error, as ECS itself reports no code.
func Exec(ctx context.Context, api ECSAPI, cluster, taskARN, container string, argv []string,
	stdin io.Reader, stdout io.Writer, tty bool, resize <-chan Size) (exitCode int, err error) {
	res, err := Start(ctx, api, Request{
		Cluster: cluster, Task: taskARN, Container: container, Command: argv,
		Stream: Stream{Stdin: stdin, Stdout: stdout, TTY: tty, Resize: resize},
	})
	return res.Code, err
}

// execError makes ExecuteCommand's refusals say what to do.
func execError(r Request, err error) error {
	var tnc *ecstypes.TargetNotConnectedException
	msg := err.Error()
	switch {
	case errors.As(err, &tnc):
		return fmt.Errorf("exec into task %s: its SSM agent is not connected (the task role needs ssmmessages:CreateControlChannel, CreateDataChannel, OpenControlChannel and OpenDataChannel, and the task a route to ssmmessages): %w", r.Task, err)
	case strings.Contains(msg, "execute command was not enabled"):
		return fmt.Errorf("exec into task %s: execute command was not enabled when the task started; redeploy the service so its new tasks have it: %w", r.Task, err)
	}
	return fmt.Errorf("exec into task %s, container %s: %w", r.Task, r.Container, err)
}
