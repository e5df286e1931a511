package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"

	"github.com/berth-dev/berth/internal/api"
)

// stream sends a request whose answer is newline-delimited api.Message and
// calls fn (when not nil) with each message as it arrives, the final result
// included. It returns the result message, or a *ResultError wrapping it when
// the result reports a failure. A stream that ends without a result is an
// ErrNoResult when needResult, else a normal end (logs, events).
func (c *Client) stream(ctx context.Context, method, path string, query url.Values, body any, needResult bool, fn func(api.Message)) (api.Message, error) {
	resp, err := c.do(ctx, method, path, query, body)
	if err != nil {
		return api.Message{}, err
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for {
		// ReadBytes rather than a Scanner: log lines have no length limit.
		line, rerr := br.ReadBytes('\n')
		if line = bytes.TrimSpace(line); len(line) > 0 {
			var m api.Message
			if err := json.Unmarshal(line, &m); err != nil {
				return api.Message{}, fmt.Errorf("%w: %w", errBadMessage, err)
			}
			if fn != nil {
				fn(m)
			}
			if m.Kind == api.KindResult {
				if !m.OK {
					return m, &ResultError{Result: m}
				}
				return m, nil
			}
		}
		switch {
		case rerr == nil:
		case ctx.Err() != nil:
			return api.Message{}, context.Cause(ctx)
		case errors.Is(rerr, io.EOF):
			if needResult {
				return api.Message{}, ErrNoResult
			}
			return api.Message{}, nil
		default:
			return api.Message{}, fmt.Errorf("stream from the berth daemon at %s broke: %w", c.host, rerr)
		}
	}
}
