package h1

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of answers a Responder writes (respond.go): framed as net/http's
// server frames the same handler's, side by side.

// handlerResponder answers every request the fast path parsed with h.
type handlerResponder struct {
	h       http.Handler
	results []Result
}

func (hr *handlerResponder) Route(*Request, *Target) Exchange { return hr }

func (*handlerResponder) Answered(int)               {}
func (*handlerResponder) Retry(error) (string, bool) { return "", false }
func (*handlerResponder) Failed(Failure, error) (int, string, string) {
	return http.StatusBadGateway, "upstream", "no answer"
}
func (hr *handlerResponder) Done(res *Result) { hr.results = append(hr.results, *res) }

func (hr *handlerResponder) Respond(w http.ResponseWriter, r *http.Request) { hr.h.ServeHTTP(w, r) }

func TestResponderFramesAsNetHTTP(t *testing.T) {
	handlers := map[string]http.HandlerFunc{
		"/length": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", "5")
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, "hello")
		},
		"/no-length": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, "hel")
			_, _ = io.WriteString(w, "lo")
		},
		"/sniff": func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "<!DOCTYPE html><p>x")
		},
		"/no-sniff-encoded": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Encoding", "gzip")
			_, _ = io.WriteString(w, "\x1f\x8b")
		},
		"/no-sniff-nil": func(w http.ResponseWriter, _ *http.Request) {
			w.Header()["Content-Type"] = nil
			_, _ = io.WriteString(w, "<html>")
		},
		"/empty": func(http.ResponseWriter, *http.Request) {},
		"/204": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", "3")
			w.Header().Set("X-A", "1")
			w.WriteHeader(http.StatusNoContent)
		},
		"/304": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", "3")
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("ETag", `"x"`)
			w.WriteHeader(http.StatusNotModified)
		},
		"/404": func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "not here", http.StatusNotFound)
		},
		"/twice": func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusAccepted)
			w.WriteHeader(http.StatusTeapot)
			_, _ = io.WriteString(w, "accepted")
		},
		"/close": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Connection", "close")
			_, _ = io.WriteString(w, "bye")
		},
		"/too-long": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", "2")
			_, _ = io.WriteString(w, "ok")
			_, _ = io.WriteString(w, "and more")
		},
		"/multi": func(w http.ResponseWriter, _ *http.Request) {
			w.Header()["Set-Cookie"] = []string{"a=1", "b=2"}
			w.Header()["X-Bad"] = []string{"a\r\nInjected: yes"}
			_, _ = io.WriteString(w, "m")
		},
	}
	mux := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handlers[r.URL.Path](w, r) })
	hr := &handlerResponder{h: mux}
	fast := serve(t, &Server{Handler: hr, HTTP: &http.Server{Handler: mux}})
	ref := httptest.NewServer(mux)
	t.Cleanup(ref.Close)

	exchange := func(addr, method, path string) (*http.Response, string) {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
		_, err = io.WriteString(c, method+" "+path+" HTTP/1.1\r\nHost: "+testHost+"\r\n\r\n")
		require.NoError(t, err)
		res, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
		require.NoError(t, err)
		body, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		return res, string(body)
	}
	for path := range handlers {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			t.Run(method+path, func(t *testing.T) {
				n := len(hr.results)
				got, gotBody := exchange(fast, method, path)
				want, wantBody := exchange(strings.TrimPrefix(ref.URL, "http://"), method, path)
				require.Len(t, hr.results, n+1, "answered by the Responder")
				assert.Equal(t, want.StatusCode, got.StatusCode)
				gh, wh := got.Header.Clone(), want.Header.Clone()
				delete(gh, "Date")
				delete(wh, "Date")
				assert.Equal(t, wh, gh)
				assert.NotEmpty(t, got.Header.Get("Date"))
				assert.Equal(t, wantBody, gotBody)
				assert.Equal(t, want.ContentLength, got.ContentLength)
				assert.Equal(t, want.TransferEncoding, got.TransferEncoding)
				assert.Equal(t, want.Close, got.Close)
				assert.Equal(t, want.StatusCode, hr.results[n].Status)
			})
		}
	}
}
