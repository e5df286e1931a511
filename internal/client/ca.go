package client

import (
	"context"
	"io"
	"net/http"
)

// CARoot returns the PEM root certificate of the daemon's local CA, which
// signs the HTTPS certificates of names under its domain.
func (c *Client) CARoot(ctx context.Context) ([]byte, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v1/ca", nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}
