package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/attach"
)

func tasksPath(app string) string { return "/v1/apps/" + url.PathEscape(app) + "/tasks" }

func taskPath(id string) string { return "/v1/tasks/" + url.PathEscape(id) }

// RunTask runs a task and streams it to fn: a "task" message with its ID,
// its output lines (Stream "stdout" or "stderr"), then the result, whose
// Task holds the status and exit code. A task that ran returns its result
// whatever its exit code; one that could not start is a *ResultError (whose
// Result.Task, when set, holds the exit code a shell would give). Cancelling
// ctx hangs up, which stops the task.
func (c *Client) RunTask(ctx context.Context, app string, req api.TaskRunRequest, fn func(api.Message)) (api.Message, error) {
	req.Detach = false
	return c.stream(ctx, http.MethodPost, tasksPath(app), nil, req, true, fn)
}

// RunTaskDetached starts a task and returns it at once; it runs on.
func (c *Client) RunTaskDetached(ctx context.Context, app string, req api.TaskRunRequest) (api.Task, error) {
	req.Detach = true
	var t api.Task
	err := c.call(ctx, http.MethodPost, tasksPath(app), nil, req, &t)
	return t, err
}

// AttachTask runs a task as an interactive session (req.Stdin, req.TTY):
// drive it with the returned connection's Pump (or its frames), and close
// it when done. Closing it before the Exit frame stops the task.
func (c *Client) AttachTask(ctx context.Context, app string, req api.TaskRunRequest) (*attach.Conn, error) {
	req.Detach = false
	return c.upgrade(ctx, tasksPath(app), req)
}

// Exec runs a command inside a running instance of a service, as an
// attach session like AttachTask.
func (c *Client) Exec(ctx context.Context, app, service string, req api.ExecRequest) (*attach.Conn, error) {
	return c.upgrade(ctx, servicePath(app, service)+"/exec", req)
}

// Tasks lists the tasks of app ("" means every app), newest first; limit
// <= 0 means the daemon's default.
func (c *Client) Tasks(ctx context.Context, app string, limit int) ([]api.Task, error) {
	q := url.Values{}
	if app != "" {
		q.Set("app", app)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var ts []api.Task
	err := c.call(ctx, http.MethodGet, "/v1/tasks", q, nil, &ts)
	return ts, err
}

// Task returns one task by ID or unique ID prefix.
func (c *Client) Task(ctx context.Context, id string) (api.Task, error) {
	var t api.Task
	err := c.call(ctx, http.MethodGet, taskPath(id), nil, nil, &t)
	return t, err
}

// TaskLogs streams a task's output lines (kind "log") to fn: what it has
// printed so far, and with follow what it prints until it ends.
func (c *Client) TaskLogs(ctx context.Context, id string, follow bool, fn func(api.Message)) error {
	var q url.Values
	if follow {
		q = url.Values{"follow": {"1"}}
	}
	_, err := c.stream(ctx, http.MethodGet, taskPath(id)+"/logs", q, nil, false, fn)
	return err
}

// StopTask stops a running task and returns it once it has ended.
func (c *Client) StopTask(ctx context.Context, id string) (api.Task, error) {
	var t api.Task
	err := c.call(ctx, http.MethodPost, taskPath(id)+"/stop", nil, nil, &t)
	return t, err
}

// handshakeTimeout bounds an upgrade request's answer; the session after it
// runs for as long as it needs.
const handshakeTimeout = 30 * time.Second

// upgrade sends body to path asking to switch to the attach protocol, and
// returns the session once the daemon agreed. A refusal is an *APIError.
func (c *Client) upgrade(ctx context.Context, path string, body any) (*attach.Conn, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", attach.Protocol)
	req.Header.Set("User-Agent", "berth-cli")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	nc, err := c.dial(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, c.transportError(err)
	}
	_ = nc.SetDeadline(time.Now().Add(handshakeTimeout))
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Now()) })
	br := bufio.NewReader(nc)
	err = req.Write(nc)
	var resp *http.Response
	if err == nil {
		resp, err = http.ReadResponse(br, req)
	}
	if !stop() || err != nil {
		nc.Close()
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, c.transportError(err)
	}
	_ = nc.SetDeadline(time.Time{})
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer nc.Close()
		defer resp.Body.Close()
		return nil, readAPIError(resp)
	}
	return attach.NewConn(nc, br), nil
}
