package console

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/api"
)

//go:embed assets
var assets embed.FS

// cookiePrefix names the console's session cookie, followed by the
// console's port: browsers keep cookies per host, not per port, so two
// daemons' consoles on one machine must not share a name.
const cookiePrefix = "berth_console_"

// CSRFHeader carries the session's CSRF token on every request that
// changes something.
const CSRFHeader = "X-Berth-CSRF"

// Config is what a Console serves.
type Config struct {
	// API is the daemon's HTTP API (package api's endpoints), served
	// in-process under /api/ to signed-in browsers.
	API http.Handler
	// Addr is the console's listening address (host:port), for the
	// sign-in URL and the Host check.
	Addr   string
	Logger *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Console is the web console of one daemon.
type Console struct {
	cfg      Config
	sessions *sessions
	base     string          // http://HOST:PORT of the sign-in URL
	hosts    map[string]bool // Host names a request may carry
	page     *template.Template
	static   http.Handler
	cookie   string // the session cookie's name
}

// New returns the console of cfg.
func New(cfg Config) *Console {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Console{cfg: cfg, sessions: newSessions(cfg.Now), hosts: map[string]bool{"localhost": true}}
	host, port, _ := net.SplitHostPort(cfg.Addr)
	if h, err := os.Hostname(); err == nil {
		c.hosts[strings.ToLower(h)] = true
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		// Listening on every address: the URL names the loopback, which
		// reaches it from this machine (or through an SSH tunnel).
		host = "127.0.0.1"
	} else if ip == nil {
		c.hosts[strings.ToLower(host)] = true
	}
	c.base = "http://" + net.JoinHostPort(host, port)
	c.cookie = cookiePrefix + port
	c.page = template.Must(template.ParseFS(assets, "assets/index.html"))
	sub, _ := fs.Sub(assets, "assets")
	c.static = http.StripPrefix("/static/", http.FileServer(http.FS(sub)))
	return c
}

// CookieName is the name of the console's session cookie.
func (c *Console) CookieName() string { return c.cookie }

// SignIn mints a one-time sign-in URL, good for SignInTTL. The daemon
// answers POST /v1/ui/signin with it, under the API's own authorization.
func (c *Console) SignIn() api.SignIn {
	tok, exp := c.sessions.newSignIn()
	return api.SignIn{URL: c.base + "/signin?token=" + tok, Expires: exp}
}

// Handler is the console's HTTP handler, for its own listener.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /signin", c.handleSignIn)
	mux.Handle("POST /signout", c.authorized(http.HandlerFunc(c.handleSignOut)))
	mux.Handle("GET /{$}", c.authorized(http.HandlerFunc(c.handlePage)))
	mux.Handle("GET /static/", c.authorized(c.static))
	mux.Handle("GET /live", c.authorized(http.HandlerFunc(c.handleLive)))
	mux.Handle("/api/", c.authorized(http.StripPrefix("/api", c.cfg.API)))
	return c.guard(mux)
}

// guard refuses requests whose Host is not the console's own (DNS
// rebinding: a page of another site whose name resolves here) and whose
// Origin, when they carry one, is another site; and sets the headers every
// answer carries.
func (c *Console) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		if !c.hostAllowed(r.Host) {
			http.Error(w, "berth console: unknown Host "+r.Host+"; open the URL that berth ui prints", http.StatusMisdirectedRequest)
			return
		}
		if o := r.Header.Get("Origin"); o != "" && (o != "null" || !safe(r.Method)) {
			u, err := url.Parse(o)
			if err != nil || u.Host != r.Host {
				http.Error(w, "berth console: request from another site ("+o+") refused", http.StatusForbidden)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (c *Console) hostAllowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.ToLower(strings.Trim(host, "[]"))
	if net.ParseIP(host) != nil {
		return true
	}
	return c.hosts[host]
}

// authorized lets through the requests of a signed-in browser; a request
// that changes something must carry the session's CSRF token too.
func (c *Console) authorized(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie(c.cookie)
		var sess session
		ok := err == nil
		if ok {
			sess, ok = c.sessions.lookup(ck.Value)
		}
		if !ok {
			refuse(w, r, http.StatusUnauthorized, "unauthorized", "not signed in to the berth console: run \"berth ui\" and open the URL it prints")
			return
		}
		if !safe(r.Method) && !sameToken(r.Header.Get(CSRFHeader), sess.csrf) {
			refuse(w, r, http.StatusForbidden, "csrf", "missing or wrong CSRF token: reload the console's page")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// safe methods change nothing: they need no CSRF token.
func safe(method string) bool { return method == http.MethodGet || method == http.MethodHead }

// refuse answers JSON to the API and the live feed, a short page to a
// browser's navigation.
func refuse(w http.ResponseWriter, r *http.Request, code int, reason, msg string) {
	if strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/live" {
		writeJSON(w, code, api.Error{Message: msg, Code: reason})
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_ = refusedPage.Execute(w, msg)
}

var refusedPage = template.Must(template.New("refused").Parse(`<!doctype html><meta charset="utf-8"><title>berth console</title>
<h1>berth console</h1><p id="refused">{{.}}</p>`))

func (c *Console) handleSignIn(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	id, sess, ok := c.sessions.redeem(r.URL.Query().Get("token"))
	if !ok {
		refuse(w, r, http.StatusUnauthorized, "unauthorized", "this sign-in link is unknown, used or expired (links work once, for 2 minutes): run \"berth ui\" again")
		return
	}
	c.cfg.Logger.Info("a browser signed in to the console", "remote", r.RemoteAddr, "user_agent", r.UserAgent())
	http.SetCookie(w, &http.Cookie{
		Name: c.cookie, Value: id, Path: "/",
		Expires: sess.expires, MaxAge: int(SessionTTL.Seconds()),
		HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil,
	})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (c *Console) handleSignOut(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie(c.cookie); err == nil {
		c.sessions.end(ck.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: c.cookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
}

// pageData fills index.html.
type pageData struct {
	CSRF string
}

func (c *Console) handlePage(w http.ResponseWriter, r *http.Request) {
	ck, _ := r.Cookie(c.cookie)
	sess, _ := c.sessions.lookup(ck.Value)
	var buf bytes.Buffer
	if err := c.page.Execute(&buf, pageData{CSRF: sess.csrf}); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}
