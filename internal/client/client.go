package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Client talks to one berth daemon. It is safe for concurrent use.
type Client struct {
	host  string // as the user gave it, for messages
	base  string // URL prefix of every request
	token string
	hc    *http.Client
	// dial opens a raw connection to the daemon, for attach sessions,
	// which leave HTTP after the upgrade.
	dial func(ctx context.Context) (net.Conn, error)
}

// dialTimeout bounds connecting only: streams (deploys, logs -f) run for as
// long as they need, bounded by the caller's context.
const dialTimeout = 10 * time.Second

// maxErrorBody bounds how much of a failed response is read.
const maxErrorBody = 64 << 10

// New returns a client of the daemon at host: "unix:///path/berth.sock", or
// "tcp://HOST:PORT" for HTTPS verified with the PEM certificates in caFile
// (the system roots when caFile is "") and authenticated with token.
func New(host, token, caFile string) (*Client, error) {
	c := &Client{host: host, token: token}
	dialer := &net.Dialer{Timeout: dialTimeout}
	switch {
	case strings.HasPrefix(host, "unix://"):
		path := strings.TrimPrefix(host, "unix://")
		if path == "" {
			return nil, fmt.Errorf("invalid host %q: expected unix:///path/berth.sock", host)
		}
		c.base = "http://berth"
		c.dial = func(ctx context.Context) (net.Conn, error) { return dialer.DialContext(ctx, "unix", path) }
		c.hc = &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, "unix", path)
			},
			MaxIdleConns:    4,
			IdleConnTimeout: 30 * time.Second,
		}}
	case strings.HasPrefix(host, "tcp://"):
		addr := strings.TrimPrefix(host, "tcp://")
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("invalid host %q: expected tcp://HOST:PORT", host)
		}
		tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
		if caFile != "" {
			pem, err := os.ReadFile(caFile)
			if err != nil {
				return nil, fmt.Errorf("read CA file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("CA file %s holds no PEM certificate", caFile)
			}
			tlsConfig.RootCAs = pool
		}
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.DialContext = dialer.DialContext
		t.TLSClientConfig = tlsConfig
		c.base = "https://" + addr
		// A session upgrades an HTTP/1.1 connection: never offer HTTP/2.
		sessionTLS := tlsConfig.Clone()
		sessionTLS.NextProtos = []string{"http/1.1"}
		td := &tls.Dialer{NetDialer: dialer, Config: sessionTLS}
		c.dial = func(ctx context.Context) (net.Conn, error) { return td.DialContext(ctx, "tcp", addr) }
		c.hc = &http.Client{Transport: t}
	default:
		return nil, fmt.Errorf("invalid host %q: expected unix:///path/berth.sock or tcp://HOST:PORT", host)
	}
	return c, nil
}

// do sends one request and returns the response when its status is 2xx;
// otherwise it returns an *APIError. body, when not nil, is sent as JSON.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body any) (*http.Response, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		r = bytes.NewReader(b)
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, application/x-ndjson")
	req.Header.Set("User-Agent", "berth-cli")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, c.transportError(err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, readAPIError(resp)
	}
	return resp, nil
}

// readAPIError decodes a failed response's api.Error, or makes one from the
// status when the body is not one (a proxy in the way, an older daemon).
func readAPIError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &APIError{StatusCode: resp.StatusCode}
	if err := json.Unmarshal(b, &e.Body); err != nil || e.Body.Message == "" {
		e.Body.Message = fmt.Sprintf("the berth daemon answered %s", resp.Status)
		if line := firstLine(string(b)); line != "" {
			e.Body.Message += ": " + line
		}
	}
	return e
}

// call sends a request and decodes its JSON answer into out (nil: discard).
func (c *Client) call(ctx context.Context, method, path string, query url.Values, body, out any) error {
	resp, err := c.do(ctx, method, path, query, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return fmt.Errorf("decode the berth daemon's answer to %s %s: %w", method, path, err)
	}
	return nil
}
