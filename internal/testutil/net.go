package testutil

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. Prefer
// listening on port 0 directly; use this only when a port must be named
// before its listener exists (a container's published port).
func FreePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// WaitHTTP polls url with GET until it answers 200 OK, failing tb when
// timeout passes first. It returns the body of the 200 response.
func WaitHTTP(tb testing.TB, url string, timeout time.Duration) string {
	tb.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	var last string
	for {
		body, err := get(client, url)
		if err == nil {
			return body
		}
		last = err.Error()
		if time.Now().After(deadline) {
			tb.Fatalf("%s not ready after %s: %s", url, timeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func get(client *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s: %.200s", resp.Status, body)
	}
	return string(body), nil
}
