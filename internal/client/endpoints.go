package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/berth-dev/berth/internal/api"
)

// servicePath is /v1/apps/{app}/services/{svc} with both escaped.
func servicePath(app, service string) string {
	return "/v1/apps/" + url.PathEscape(app) + "/services/" + url.PathEscape(service)
}

// Apps lists the deployed apps.
func (c *Client) Apps(ctx context.Context) ([]api.AppSummary, error) {
	var apps []api.AppSummary
	err := c.call(ctx, http.MethodGet, "/v1/apps", nil, nil, &apps)
	return apps, err
}

// Deploy deploys a spec, calling fn with each phase, log line and the final
// result as they stream in. It returns the result; a failed deploy is a
// *ResultError.
func (c *Client) Deploy(ctx context.Context, req api.DeployRequest, fn func(api.Message)) (api.Message, error) {
	return c.stream(ctx, http.MethodPost, "/v1/deploy", nil, req, true, fn)
}

// Status returns the status of app, or of every app when app is "".
func (c *Client) Status(ctx context.Context, app string) (api.Status, error) {
	var q url.Values
	if app != "" {
		q = url.Values{"app": {app}}
	}
	var st api.Status
	err := c.call(ctx, http.MethodGet, "/v1/status", q, nil, &st)
	return st, err
}

// Revisions lists a service's revisions.
func (c *Client) Revisions(ctx context.Context, app, service string) ([]api.Revision, error) {
	var revs []api.Revision
	err := c.call(ctx, http.MethodGet, servicePath(app, service)+"/revisions", nil, nil, &revs)
	return revs, err
}

// Rollback returns a service to an earlier revision, streaming its progress
// to fn like Deploy.
func (c *Client) Rollback(ctx context.Context, app, service string, req api.RollbackRequest, fn func(api.Message)) (api.Message, error) {
	return c.stream(ctx, http.MethodPost, servicePath(app, service)+"/rollback", nil, req, true, fn)
}

// LogsOptions select which log lines Logs streams.
type LogsOptions struct {
	// Follow keeps the stream open for new lines.
	Follow bool
	// Since is a duration ("10m") or a timestamp, passed as given.
	Since string
	// Instance limits the lines to one instance ID.
	Instance string
	// Container limits the lines to one container of each instance: the
	// service's own (its name) or a sidecar's; "" is all of them.
	Container string
	// Tail is the number of past lines per instance; 0 means all.
	Tail int
}

// Logs streams a service's log lines (kind "log") to fn until the daemon
// ends the stream or ctx is done.
func (c *Client) Logs(ctx context.Context, app, service string, opts LogsOptions, fn func(api.Message)) error {
	q := url.Values{}
	if opts.Follow {
		q.Set("follow", "1")
	}
	if opts.Since != "" {
		q.Set("since", opts.Since)
	}
	if opts.Instance != "" {
		q.Set("instance", opts.Instance)
	}
	if opts.Container != "" {
		q.Set("container", opts.Container)
	}
	if opts.Tail > 0 {
		q.Set("tail", strconv.Itoa(opts.Tail))
	}
	_, err := c.stream(ctx, http.MethodGet, servicePath(app, service)+"/logs", q, nil, false, fn)
	return err
}

// Scale sets fixed instance counts (service -> N) in app and returns the
// app's status.
func (c *Client) Scale(ctx context.Context, app string, counts map[string]int) (api.Status, error) {
	var st api.Status
	err := c.call(ctx, http.MethodPost, "/v1/apps/"+url.PathEscape(app)+"/scale", nil, api.ScaleRequest{Counts: counts}, &st)
	return st, err
}

// Pause stops a service's instances and keeps its revision for Resume.
func (c *Client) Pause(ctx context.Context, app, service string) (api.ServiceStatus, error) {
	var st api.ServiceStatus
	err := c.call(ctx, http.MethodPost, servicePath(app, service)+"/pause", nil, nil, &st)
	return st, err
}

// Resume starts a paused service again, streaming its progress to fn.
func (c *Client) Resume(ctx context.Context, app, service string, fn func(api.Message)) (api.Message, error) {
	return c.stream(ctx, http.MethodPost, servicePath(app, service)+"/resume", nil, nil, true, fn)
}

// Destroy removes an app, its containers and its state, streaming progress
// to fn.
func (c *Client) Destroy(ctx context.Context, app string, fn func(api.Message)) (api.Message, error) {
	return c.stream(ctx, http.MethodDelete, "/v1/apps/"+url.PathEscape(app), nil, nil, true, fn)
}

// SecretSet sets a service's secrets (KEY -> VALUE) and returns its keys.
func (c *Client) SecretSet(ctx context.Context, app, service string, values map[string]string) ([]api.SecretKey, error) {
	var keys []api.SecretKey
	err := c.call(ctx, http.MethodPut, servicePath(app, service)+"/secrets", nil, api.SecretSetRequest{Values: values}, &keys)
	return keys, err
}

// SecretList returns a service's secret keys; values are never returned.
func (c *Client) SecretList(ctx context.Context, app, service string) ([]api.SecretKey, error) {
	var keys []api.SecretKey
	err := c.call(ctx, http.MethodGet, servicePath(app, service)+"/secrets", nil, nil, &keys)
	return keys, err
}

// SecretDelete removes one of a service's secrets.
func (c *Client) SecretDelete(ctx context.Context, app, service, key string) error {
	return c.call(ctx, http.MethodDelete, servicePath(app, service)+"/secrets/"+url.PathEscape(key), nil, nil, nil)
}

// EventsOptions select which events Events streams.
type EventsOptions struct {
	// App limits the events to one app ("" means all).
	App string
	// Follow keeps the stream open for new events.
	Follow bool
}

// Events streams recorded events (kind "event") to fn until the daemon ends
// the stream or ctx is done.
func (c *Client) Events(ctx context.Context, opts EventsOptions, fn func(api.Message)) error {
	q := url.Values{}
	if opts.App != "" {
		q.Set("app", opts.App)
	}
	if opts.Follow {
		q.Set("follow", "1")
	}
	_, err := c.stream(ctx, http.MethodGet, "/v1/events", q, nil, false, fn)
	return err
}
