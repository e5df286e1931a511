package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestHandler(t *testing.T) {
	cfg := config{Version: "v3", Message: "Hi there", Port: "8080"}
	tests := []struct {
		name       string
		method     string
		path       string
		accept     string
		wantStatus int
		wantType   string
		wantBody   []string
	}{
		{"text page", "GET", "/", "", 200, "text/plain; charset=utf-8", []string{"Hi there (version v3)\n"}},
		{"html page", "GET", "/", "text/html,application/xhtml+xml", 200, "text/html; charset=utf-8", []string{"<h1>Hi there</h1>", "version v3"}},
		{"health", "GET", "/healthz", "", 200, "text/plain; charset=utf-8", []string{"ok\n"}},
		{"unknown", "GET", "/nope", "", 404, "", nil},
		{"wrong method", "POST", "/", "", 405, "", nil},
	}
	h := newHandler(cfg)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, nil)
			if tt.accept != "" {
				req.Header.Set("Accept", tt.accept)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			res := rec.Result()
			body, _ := io.ReadAll(res.Body)
			assert.Equal(t, tt.wantStatus, res.StatusCode)
			if tt.wantType != "" {
				assert.Equal(t, tt.wantType, res.Header.Get("Content-Type"))
			}
			for _, want := range tt.wantBody {
				assert.Contains(t, string(body), want)
			}
		})
	}
}

func TestHTMLEscapesMessage(t *testing.T) {
	h := newHandler(config{Version: "v1", Message: "<script>x</script>"})
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Accept", "text/html")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	assert.NotContains(t, rec.Body.String(), "<script>")
}

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want config
	}{
		{"defaults", nil, config{Version: "dev", Message: "Hello from berth!", Port: "8080"}},
		{"set", map[string]string{"VERSION": "v2", "APP_MESSAGE": "Bonjour", "PORT": "9000"}, config{Version: "v2", Message: "Bonjour", Port: "9000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"VERSION", "APP_MESSAGE", "PORT"} {
				t.Setenv(k, tt.env[k])
			}
			assert.Equal(t, tt.want, configFromEnv())
		})
	}
}

func TestServeSmoke(t *testing.T) {
	srv := httptest.NewServer(newHandler(config{Version: "v1", Message: "m"}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
}
