package console_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/console"
)

// apiRecorder stands for the daemon's API: it answers every request with
// its method and path and remembers what reached it.
type apiRecorder struct {
	mu   sync.Mutex
	seen []string
}

func (a *apiRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.seen = append(a.seen, r.Method+" "+r.URL.Path)
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"method": r.Method, "path": r.URL.Path})
}

func (a *apiRecorder) requests() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.seen...)
}

// clock is a settable time for the console's expiries.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	con   *console.Console
	srv   *httptest.Server
	api   *apiRecorder
	clock *clock
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{api: &apiRecorder{}, clock: &clock{now: time.Unix(1_800_000_000, 0)}}
	f.srv = httptest.NewUnstartedServer(nil)
	f.con = console.New(console.Config{API: f.api, Addr: f.srv.Listener.Addr().String(), Now: f.clock.Now})
	f.srv.Config.Handler = f.con.Handler()
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	return f
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects.
func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// signIn spends a fresh sign-in URL in c and returns the page's CSRF token.
func (f *fixture) signIn(t *testing.T, c *http.Client) string {
	t.Helper()
	in := f.con.SignIn()
	resp, _ := get(t, c, in.URL)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	resp, body := get(t, c, f.srv.URL+"/")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	m := regexp.MustCompile(`name="berth-csrf" content="([0-9a-f]+)"`).FindStringSubmatch(body)
	require.NotNil(t, m, body)
	return m[1]
}

func TestEverythingIsRefusedWithoutASession(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := browser(t)
	for _, path := range []string{"/", "/static/app.js", "/live", "/api/v1/status", "/api/v1/apps"} {
		resp, _ := get(t, c, f.srv.URL+path)
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, path)
	}
	resp, err := c.Post(f.srv.URL+"/api/v1/apps/shop/services/web/rollback", "application/json", strings.NewReader("{}"))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	// A forged cookie is no session.
	u, _ := url.Parse(f.srv.URL)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: f.con.CookieName(), Value: strings.Repeat("ab", 32)}})
	resp, _ = get(t, c, f.srv.URL+"/api/v1/status")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Empty(t, f.api.requests(), "nothing reached the API")
}

func TestSignInLinkWorksOnceAndSetsAStrictHttpOnlyCookie(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	in := f.con.SignIn()
	assert.True(t, strings.HasPrefix(in.URL, f.srv.URL+"/signin?token="), in.URL)
	assert.Equal(t, f.clock.Now().Add(console.SignInTTL), in.Expires)

	c := browser(t)
	resp, _ := get(t, c, in.URL)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Equal(t, "/", resp.Header.Get("Location"))
	cookies := resp.Cookies()
	require.Len(t, cookies, 1)
	ck := cookies[0]
	assert.Equal(t, f.con.CookieName(), ck.Name)
	assert.True(t, ck.HttpOnly)
	assert.Equal(t, http.SameSiteStrictMode, ck.SameSite)
	assert.Equal(t, int(console.SessionTTL.Seconds()), ck.MaxAge)

	resp, body := get(t, c, f.srv.URL+"/api/v1/status")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.JSONEq(t, `{"method":"GET","path":"/v1/status"}`, body, "the API answers under /api/")

	// Used once: a second browser with the same link is refused.
	other := browser(t)
	resp, body = get(t, other, in.URL)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Contains(t, body, "berth ui")
	resp, _ = get(t, other, f.srv.URL+"/")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

func TestSignInLinkAndSessionExpire(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	late := f.con.SignIn()
	c := browser(t)
	f.signIn(t, c)
	f.clock.add(console.SignInTTL)
	resp, _ := get(t, browser(t), late.URL)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "a link past its 2 minutes")

	resp, _ = get(t, c, f.srv.URL+"/api/v1/status")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	f.clock.add(console.SessionTTL)
	resp, _ = get(t, c, f.srv.URL+"/api/v1/status")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "a session past its 12 hours")
}

func TestChangesNeedTheCSRFTokenAndTheSameOrigin(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := browser(t)
	token := f.signIn(t, c)
	post := func(csrf, origin string) int {
		req, err := http.NewRequest(http.MethodPost, f.srv.URL+"/api/v1/apps/shop/services/web/pause", nil)
		require.NoError(t, err)
		if csrf != "" {
			req.Header.Set(console.CSRFHeader, csrf)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := c.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusForbidden, post("", ""), "no token")
	assert.Equal(t, http.StatusForbidden, post(strings.Repeat("0", 64), ""), "a wrong token")
	assert.Equal(t, http.StatusForbidden, post(token, "http://evil.example"), "another site's page")
	assert.Equal(t, http.StatusForbidden, post(token, "null"), "an opaque origin (a sandboxed frame)")
	assert.Empty(t, f.api.requests())
	assert.Equal(t, http.StatusOK, post(token, f.srv.URL))
	assert.Equal(t, []string{"POST /v1/apps/shop/services/web/pause"}, f.api.requests())

	// Another session's token is not this one's.
	other := browser(t)
	otherToken := f.signIn(t, other)
	assert.NotEqual(t, token, otherToken)
	assert.Equal(t, http.StatusForbidden, post(otherToken, ""))
}

func TestRefusesOtherHostNames(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := browser(t)
	f.signIn(t, c)
	// A page of another site whose name now resolves to 127.0.0.1 (DNS
	// rebinding) reaches the console with its own name as Host.
	req, err := http.NewRequest(http.MethodGet, f.srv.URL+"/api/v1/status", nil)
	require.NoError(t, err)
	req.Host = "evil.example"
	resp, err := c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMisdirectedRequest, resp.StatusCode)
	_, port, err := net.SplitHostPort(f.srv.Listener.Addr().String())
	require.NoError(t, err)
	req.Host = "localhost:" + port
	resp, err = c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.NotEqual(t, http.StatusMisdirectedRequest, resp.StatusCode, "localhost is the console's own name")
}

func TestSignOutEndsTheSession(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := browser(t)
	token := f.signIn(t, c)
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+"/signout", nil)
	require.NoError(t, err)
	req.Header.Set(console.CSRFHeader, token)
	resp, err := c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	resp, _ = get(t, c, f.srv.URL+"/")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

func TestLiveFeedSendsTheStatus(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := browser(t)
	f.signIn(t, c)
	resp, err := c.Get(f.srv.URL + "/live?app=shop&service=web")
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	buf := make([]byte, 4096)
	var got string
	for !strings.Contains(got, "event: history") {
		n, err := resp.Body.Read(buf)
		require.NoError(t, err)
		got += string(buf[:n])
	}
	assert.Contains(t, got, "event: status\ndata: {\"method\":\"GET\",\"path\":\"/v1/status\"}\n\n")
	assert.Contains(t, got, `"path":"/v1/apps/shop/services/web/history"`)
}
