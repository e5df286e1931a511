package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/berth-dev/berth/internal/api"
)

func edgePath(name string) string { return "/v1/edge/" + url.PathEscape(name) }

// Entrypoints lists the edge's entrypoints.
func (c *Client) Entrypoints(ctx context.Context) ([]api.Entrypoint, error) {
	var eps []api.Entrypoint
	err := c.call(ctx, http.MethodGet, "/v1/edge", nil, nil, &eps)
	return eps, err
}

// Entrypoint returns one entrypoint.
func (c *Client) Entrypoint(ctx context.Context, name string) (api.Entrypoint, error) {
	var ep api.Entrypoint
	err := c.call(ctx, http.MethodGet, edgePath(name), nil, nil, &ep)
	return ep, err
}

// EdgeSwitch moves all of an entrypoint's traffic to one origin.
func (c *Client) EdgeSwitch(ctx context.Context, name string, req api.SwitchRequest) (api.Entrypoint, error) {
	var ep api.Entrypoint
	err := c.call(ctx, http.MethodPost, edgePath(name)+"/switch", nil, req, &ep)
	return ep, err
}

// EdgeShift sends shares of an entrypoint's traffic to other origins.
func (c *Client) EdgeShift(ctx context.Context, name string, req api.ShiftRequest) (api.Entrypoint, error) {
	var ep api.Entrypoint
	err := c.call(ctx, http.MethodPost, edgePath(name)+"/shift", nil, req, &ep)
	return ep, err
}

// EdgeMaintenance turns an entrypoint's maintenance page on or off.
func (c *Client) EdgeMaintenance(ctx context.Context, name string, on bool) (api.Entrypoint, error) {
	var ep api.Entrypoint
	err := c.call(ctx, http.MethodPost, edgePath(name)+"/maintenance", nil, api.MaintenanceRequest{On: on}, &ep)
	return ep, err
}

// EdgeInvalidate drops an entrypoint's cached responses matching pattern.
func (c *Client) EdgeInvalidate(ctx context.Context, name, pattern string) (api.InvalidateResult, error) {
	var res api.InvalidateResult
	err := c.call(ctx, http.MethodPost, edgePath(name)+"/invalidate", nil, api.InvalidateRequest{Pattern: pattern}, &res)
	return res, err
}
