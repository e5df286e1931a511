package client

import (
	"context"
	"net/http"

	"github.com/berth-dev/berth/internal/api"
)

// ConsoleSignIn asks the daemon for a one-time URL that signs a browser in
// to its web console (berth ui).
func (c *Client) ConsoleSignIn(ctx context.Context) (api.SignIn, error) {
	var out api.SignIn
	err := c.call(ctx, http.MethodPost, "/v1/ui/signin", nil, nil, &out)
	return out, err
}

// History returns a service's traffic at the edge over the last hour, per
// revision (the console's graphs).
func (c *Client) History(ctx context.Context, app, service string) (api.TrafficHistory, error) {
	var out api.TrafficHistory
	err := c.call(ctx, http.MethodGet, servicePath(app, service)+"/history", nil, nil, &out)
	return out, err
}
