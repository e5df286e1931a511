package traffic

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/controlplane/apierr"
	"github.com/berth-dev/berth/internal/edge/cache"
	"github.com/berth-dev/berth/internal/router"
	"github.com/berth-dev/berth/internal/spec"
	"github.com/berth-dev/berth/internal/store"
)

// maxErrorPage bounds an error page file.
const maxErrorPage = 1 << 20

// probeTimeout bounds the reachability check of an origin at switch time.
const probeTimeout = 5 * time.Second

// Store is the part of the state store the entrypoints keep their two
// halves in (*store.Store).
type Store interface {
	ListEntrypoints(ctx context.Context, app string) ([]store.Entrypoint, error)
	GetEntrypoint(ctx context.Context, name string) (store.Entrypoint, error)
	PutEntrypoint(ctx context.Context, ep store.Entrypoint) error
	ReplaceEntrypoints(ctx context.Context, app string, eps []store.Entrypoint) error
}

// Config is what the Entrypoints are given: where they keep their state,
// the router they install into, and the daemon's services as lookups.
type Config struct {
	Log    *slog.Logger
	Store  Store
	Router router.Router
	// DataDir holds the entrypoints' caches (DataDir/edge-cache/NAME).
	DataDir string
	// HTTPPort is the edge's bound HTTP port, for the entrypoints' URLs.
	HTTPPort string
	// ServiceSpec is the deployed spec of app/service, nil when there is
	// none: an origin that names a service is checked against it.
	ServiceSpec func(app, service string) *spec.Service
	// Event records an event of app (as the daemon's events).
	Event func(app, service, kind, msg string)
	// RefreshHosts tells the certificate manager the hosts the router now
	// serves, after entrypoints were installed or removed.
	RefreshHosts func()
}

// Entrypoints are the edge's entrypoints as the control plane keeps them:
// stored, installed in the router, with their caches. Changes are
// serialised by mu; every entrypoint with a cache has one in caches.
type Entrypoints struct {
	log          *slog.Logger
	store        Store
	router       router.Router
	dataDir      string
	httpPort     string
	serviceSpec  func(app, service string) *spec.Service
	event        func(app, service, kind, msg string)
	refreshHosts func()

	mu     sync.Mutex
	caches map[string]*epCache // by entrypoint name

	// specs are the installed entrypoints' specs; redirects their explicit
	// redirect_https by host, read by every plain-HTTP request.
	specs     map[string]spec.Entrypoint
	redirects atomic.Pointer[map[string]bool]
}

type epCache struct {
	c       *cache.Cache
	ttl     time.Duration
	cookies []string // the key cookies
}

// New returns the entrypoints of cfg; Load installs the stored ones.
func New(cfg Config) *Entrypoints {
	return &Entrypoints{
		log: cfg.Log, store: cfg.Store, router: cfg.Router, dataDir: cfg.DataDir, httpPort: cfg.HTTPPort,
		serviceSpec: cfg.ServiceSpec, event: cfg.Event, refreshHosts: cfg.RefreshHosts,
		caches: map[string]*epCache{},
	}
}

// epConfig is what an app's spec declares about an entrypoint, as stored:
// the spec entry and its error pages, read when the spec was deployed.
type epConfig struct {
	Spec  spec.Entrypoint `json:"spec"`
	Pages map[int][]byte  `json:"pages,omitempty"`
}

// epRuntime is what `berth edge` and the guard changed, as stored.
type epRuntime struct {
	// Origin is the active origin; SpecOrigin the spec's origin when
	// Origin was last taken from the spec. A deploy whose spec names
	// another origin than SpecOrigin resets Origin to it.
	Origin      string             `json:"origin"`
	SpecOrigin  string             `json:"spec_origin"`
	Shares      []api.Share        `json:"shares,omitempty"`
	Sticky      bool               `json:"sticky,omitempty"`
	Header      string             `json:"header,omitempty"`
	NoGuard     bool               `json:"no_guard,omitempty"`
	GuardRate   float64            `json:"guard_rate,omitempty"` // percent
	GuardWindow time.Duration      `json:"guard_window,omitempty"`
	ShiftID     string             `json:"shift_id,omitempty"`
	Maintenance bool               `json:"maintenance,omitempty"`
	Rollback    *api.GuardRollback `json:"rollback,omitempty"`
}

// Close closes the entrypoints' caches (their disk entries stay for the
// next start).
func (e *Entrypoints) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for name, c := range e.caches {
		_ = c.c.Close()
		delete(e.caches, name)
	}
}

// Load installs every stored entrypoint in the router.
func (e *Entrypoints) Load(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	recs, err := e.store.ListEntrypoints(ctx, "")
	if err != nil {
		return err
	}
	for _, rec := range recs {
		cfg, rt, err := decodeEntrypoint(rec)
		if err == nil {
			err = e.installEntrypoint(rec.App, cfg, rt)
		}
		if err != nil {
			e.log.Error("entrypoint not installed", "entrypoint", rec.Name, "err", err)
		}
	}
	e.refreshHosts()
	return nil
}

func decodeEntrypoint(rec store.Entrypoint) (epConfig, epRuntime, error) {
	var (
		cfg epConfig
		rt  epRuntime
	)
	if err := json.Unmarshal(rec.Config, &cfg); err != nil {
		return cfg, rt, fmt.Errorf("entrypoint %s: stored config unreadable: %w", rec.Name, err)
	}
	if len(rec.State) > 0 {
		if err := json.Unmarshal(rec.State, &rt); err != nil {
			return cfg, rt, fmt.Errorf("entrypoint %s: stored state unreadable: %w", rec.Name, err)
		}
	}
	if rt.Origin == "" {
		rt.Origin, rt.SpecOrigin = cfg.Spec.Origin, cfg.Spec.Origin
	}
	return cfg, rt, nil
}

func encodeEntrypoint(app string, cfg epConfig, rt epRuntime) (store.Entrypoint, error) {
	c, err := json.Marshal(cfg)
	if err != nil {
		return store.Entrypoint{}, err
	}
	s, err := json.Marshal(rt)
	if err != nil {
		return store.Entrypoint{}, err
	}
	return store.Entrypoint{Name: cfg.Spec.Name, App: app, Config: c, State: s, UpdatedAt: time.Now().UTC()}, nil
}

// resolveOrigin turns an origin as users write it into the edge's: a
// service of app ("web"), of another app ("blog/web"), or a URL.
func resolveOrigin(app, ref string) (router.Origin, error) {
	if msg := spec.CheckOriginRef(ref); msg != "" {
		return router.Origin{}, fmt.Errorf("%w: origin %s", apierr.ErrInvalid, msg)
	}
	if spec.IsOriginURL(ref) {
		u, err := url.Parse(ref)
		if err != nil {
			return router.Origin{}, fmt.Errorf("%w: origin %q: %v", apierr.ErrInvalid, ref, err)
		}
		return router.Origin{Name: ref, URL: u}, nil
	}
	if strings.Contains(ref, "/") {
		return router.Origin{Name: ref, Route: ref}, nil
	}
	return router.Origin{Name: ref, Route: app + "/" + ref}, nil
}

// sameOrigin reports whether two references name the same origin ("web"
// and "shop/web" in app shop do).
func sameOrigin(app, a, b string) bool {
	oa, err1 := resolveOrigin(app, a)
	ob, err2 := resolveOrigin(app, b)
	if err1 != nil || err2 != nil {
		return a == b
	}
	if oa.URL != nil || ob.URL != nil {
		return oa.URL != nil && ob.URL != nil && strings.TrimSuffix(oa.URL.String(), "/") == strings.TrimSuffix(ob.URL.String(), "/")
	}
	return oa.Route == ob.Route
}

// installEntrypoint builds the edge's entrypoint from its stored halves
// and installs it, creating or replacing its cache as the spec says.
// Call with mu held.
func (e *Entrypoints) installEntrypoint(app string, cfg epConfig, rt epRuntime) error {
	sp := cfg.Spec
	origin, err := resolveOrigin(app, rt.Origin)
	if err != nil {
		return err
	}
	ep := router.Entrypoint{
		Name: sp.Name, Hosts: sp.Hosts, Origin: origin,
		ShiftID: rt.ShiftID, Sticky: rt.Sticky, Header: rt.Header,
		Guard:       router.Guard{Off: rt.NoGuard, ErrorRate: cmp.Or(rt.GuardRate, 100*router.DefaultGuardErrorRate) / 100, Window: cmp.Or(rt.GuardWindow, router.DefaultGuardWindow)},
		Maintenance: rt.Maintenance,
		HSTS:        sp.HSTS,
		Compress:    sp.Compress,
		ErrorPages:  cfg.Pages,
		Controls:    controls(sp.Timeout, sp.MaxBody, sp.Headers),
	}
	if ep.Controls.Timeout == 0 {
		ep.Controls.Timeout = spec.DefaultRequestTimeout
	}
	if sp.RedirectHTTPS != nil {
		ep.RedirectHTTPS = *sp.RedirectHTTPS
	}
	for _, sh := range rt.Shares {
		o, err := resolveOrigin(app, sh.Origin)
		if err != nil {
			return err
		}
		ep.Shares = append(ep.Shares, router.Share{Origin: o, Weight: router.PercentToWeight(sh.Percent)})
	}
	if f := sp.Failover; f != nil {
		o, err := resolveOrigin(app, f.Origin)
		if err != nil {
			return err
		}
		ep.Failover = &router.Failover{Origin: o, Codes: f.On}
	}
	for _, r := range sp.Routes {
		er := router.EntrypointRoute{Prefix: r.Path, Controls: controls(r.Timeout, r.MaxBody, r.Headers)}
		if r.Origin != "" {
			o, err := resolveOrigin(app, r.Origin)
			if err != nil {
				return err
			}
			er.Origin = &o
		}
		ep.Routes = append(ep.Routes, er)
	}
	c, err := e.entrypointCache(sp)
	if err != nil {
		return err
	}
	if c != nil {
		ep.Cache = c
	}
	if err := e.router.SetEntrypoint(ep); err != nil {
		return err
	}
	e.noteSpec(sp.Name, &sp)
	return nil
}

func controls(timeout time.Duration, maxBody int64, h *spec.Headers) router.Controls {
	c := router.Controls{Timeout: timeout, MaxBody: maxBody}
	if h != nil {
		c.AddHeaders, c.RemoveHeaders = h.Add, h.Remove
	}
	return c
}

// entrypointCache returns the entrypoint's cache, creating it (or
// recreating it when its settings changed), or closes it when the spec no
// longer asks for one. Call with mu held.
func (e *Entrypoints) entrypointCache(sp spec.Entrypoint) (*cache.Cache, error) {
	cur := e.caches[sp.Name]
	if sp.Cache == nil || !sp.Cache.Enabled {
		if cur != nil {
			_ = cur.c.Close()
			delete(e.caches, sp.Name)
		}
		return nil, nil
	}
	var cookies []string
	if sp.Cache.Key != nil {
		cookies = sp.Cache.Key.Cookies
	}
	if cur != nil && cur.ttl == sp.Cache.DefaultTTL && slices.Equal(cur.cookies, cookies) {
		return cur.c, nil
	}
	if cur != nil {
		_ = cur.c.Close()
		delete(e.caches, sp.Name)
	}
	c, err := cache.New(cache.Options{
		Dir:        filepath.Join(e.dataDir, "edge-cache", sp.Name),
		DefaultTTL: sp.Cache.DefaultTTL,
		KeyCookies: cookies,
		Logger:     e.log.With("component", "cache", "entrypoint", sp.Name),
	})
	if err != nil {
		return nil, fmt.Errorf("%w: entrypoint %s: %w", apierr.ErrInvalid, sp.Name, err)
	}
	e.caches[sp.Name] = &epCache{c: c, ttl: sp.Cache.DefaultTTL, cookies: cookies}
	return c, nil
}

// dropEntrypoint takes an entrypoint out of the edge and deletes its cache.
// Call with mu held.
func (e *Entrypoints) dropEntrypoint(name string) {
	e.router.RemoveEntrypoint(name)
	e.noteSpec(name, nil)
	if c := e.caches[name]; c != nil {
		_ = c.c.Close()
		delete(e.caches, name)
	}
	_ = os.RemoveAll(filepath.Join(e.dataDir, "edge-cache", name))
}

// Plan is what a deploy will do to the app's entrypoints, checked
// before anything changes.
type Plan struct {
	app     string
	configs []epConfig
}

// Plan checks a spec's entrypoint names against other apps', and reads
// its error pages. Nothing changes.
func (e *Entrypoints) Plan(ctx context.Context, sp *spec.Spec, req api.DeployRequest) (*Plan, error) {
	plan := &Plan{app: sp.App}
	recs, err := e.store.ListEntrypoints(ctx, "")
	if err != nil {
		return nil, err
	}
	// Hosts are checked by the daemon's host claims, atomically with other
	// deploys; here only the entrypoint names, unique across apps.
	nameOwner := map[string]string{}
	for _, rec := range recs {
		nameOwner[rec.Name] = rec.App
	}
	for _, name := range sp.EdgeOrder {
		ep := *sp.Edge[name]
		if app, ok := nameOwner[name]; ok && app != sp.App {
			return nil, fmt.Errorf("%w: entrypoint %s already belongs to app %s; entrypoint names are unique across apps, pick another", apierr.ErrInvalid, name, app)
		}
		cfg := epConfig{Spec: ep}
		for code, file := range ep.ErrorPages {
			page, err := readErrorPage(req.BaseDir, file)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: edge.%s.error_pages.%d: %w", apierr.ErrInvalid, req.File, name, code, err)
			}
			if cfg.Pages == nil {
				cfg.Pages = map[int][]byte{}
			}
			cfg.Pages[code] = page
		}
		plan.configs = append(plan.configs, cfg)
	}
	return plan, nil
}

func readErrorPage(baseDir, file string) ([]byte, error) {
	p := file
	if !filepath.IsAbs(p) {
		p = filepath.Join(baseDir, p)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s (paths are relative to the spec, read on the daemon's machine): %w", file, errors.Unwrap(err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.IsDir() || st.Size() > maxErrorPage {
		return nil, fmt.Errorf("%s must be a file of at most %s", file, spec.FormatSize(maxErrorPage))
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && st.Size() > 0 {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	return b, nil
}

// Apply makes the plan's entrypoints the app's, in the store and the
// edge. A switched origin survives unless the spec now names another one;
// shifts and maintenance survive too.
func (e *Entrypoints) Apply(ctx context.Context, plan *Plan) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	old, err := e.store.ListEntrypoints(ctx, plan.app)
	if err != nil {
		return err
	}
	prev := map[string]store.Entrypoint{}
	for _, rec := range old {
		prev[rec.Name] = rec
	}
	var (
		recs    []store.Entrypoint
		rts     []epRuntime
		changes []string
	)
	for _, cfg := range plan.configs {
		name := cfg.Spec.Name
		rt := epRuntime{Origin: cfg.Spec.Origin, SpecOrigin: cfg.Spec.Origin}
		if rec, ok := prev[name]; ok {
			_, was, err := decodeEntrypoint(rec)
			if err == nil && was.SpecOrigin == cfg.Spec.Origin {
				rt = was
			} else if err == nil {
				rt.Maintenance = was.Maintenance
				changes = append(changes, fmt.Sprintf("%s (origin now %s)", name, cfg.Spec.Origin))
			}
			delete(prev, name)
		} else {
			changes = append(changes, name+" (new)")
		}
		rec, err := encodeEntrypoint(plan.app, cfg, rt)
		if err != nil {
			return err
		}
		recs = append(recs, rec)
		rts = append(rts, rt)
	}
	if err := e.store.ReplaceEntrypoints(ctx, plan.app, recs); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("%w: %w", apierr.ErrInvalid, err)
		}
		return err
	}
	var errs []error
	for i, cfg := range plan.configs {
		if err := e.installEntrypoint(plan.app, cfg, rts[i]); err != nil {
			errs = append(errs, err)
		}
	}
	for name := range prev {
		e.dropEntrypoint(name)
		changes = append(changes, name+" (removed)")
	}
	e.refreshHosts()
	if len(changes) > 0 {
		slices.Sort(changes)
		e.event(plan.app, "", "edge", "entrypoints: "+strings.Join(changes, ", "))
	}
	return errors.Join(errs...)
}

// DropApp removes an app's entrypoints from the edge (the store drops
// them with the app).
func (e *Entrypoints) DropApp(ctx context.Context, app string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	recs, err := e.store.ListEntrypoints(ctx, app)
	if err != nil {
		e.log.Warn("list entrypoints to drop", "app", app, "err", err)
		return
	}
	for _, rec := range recs {
		e.dropEntrypoint(rec.Name)
	}
}

// entrypoint returns a stored entrypoint and its decoded halves.
func (e *Entrypoints) entrypoint(ctx context.Context, name string) (store.Entrypoint, epConfig, epRuntime, error) {
	rec, err := e.store.GetEntrypoint(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return rec, epConfig{}, epRuntime{}, fmt.Errorf("%w: no entrypoint named %q; see \"berth edge ls\"", apierr.ErrNotFound, name)
	}
	if err != nil {
		return rec, epConfig{}, epRuntime{}, err
	}
	cfg, rt, err := decodeEntrypoint(rec)
	return rec, cfg, rt, err
}

// saveEntrypoint stores the new state and installs it; on failure the edge
// keeps what it had and the store is put back.
func (e *Entrypoints) saveEntrypoint(ctx context.Context, rec store.Entrypoint, cfg epConfig, rt epRuntime) (store.Entrypoint, error) {
	next, err := encodeEntrypoint(rec.App, cfg, rt)
	if err != nil {
		return rec, err
	}
	if err := e.store.PutEntrypoint(ctx, next); err != nil {
		return rec, err
	}
	if err := e.installEntrypoint(rec.App, cfg, rt); err != nil {
		_ = e.store.PutEntrypoint(context.WithoutCancel(ctx), rec)
		return rec, err
	}
	return next, nil
}

// checkOrigin refuses an origin that cannot take traffic now: an external
// URL that does not answer, a service that does not exist, is paused or has
// no healthy instance. force skips all but the malformed.
func (e *Entrypoints) checkOrigin(ctx context.Context, app, ref string, force bool) error {
	o, err := resolveOrigin(app, ref)
	if err != nil {
		return err
	}
	if o.URL != nil {
		if force {
			return nil
		}
		// A router that cannot probe takes the URL as --force does.
		if p, ok := e.router.(router.OriginProber); ok {
			if err := p.ProbeOrigin(ctx, o.URL, probeTimeout); err != nil {
				return fmt.Errorf("%w: %w (check the URL, or pass --force to use it anyway)", apierr.ErrInvalid, err)
			}
		}
		return nil
	}
	svcApp, svcName, _ := strings.Cut(o.Route, "/")
	sp := e.serviceSpec(svcApp, svcName)
	switch {
	case sp == nil && force:
		return nil
	case sp == nil:
		return fmt.Errorf("%w: origin %s: no deployed service %s (deploy it first, or pass --force)", apierr.ErrInvalid, ref, o.Route)
	case sp.Port == 0:
		return fmt.Errorf("%w: origin %s: service %s has no port, so it cannot receive requests", apierr.ErrInvalid, ref, o.Route)
	case force:
		return nil
	}
	for _, r := range e.router.Routes() {
		if r.Key != o.Route {
			continue
		}
		switch {
		case r.Paused:
			return fmt.Errorf("%w: origin %s: service %s is paused (berth resume %s, or pass --force)", apierr.ErrInvalid, ref, o.Route, svcName)
		case len(r.Backends) == 0 && r.Hold == nil:
			return fmt.Errorf("%w: origin %s: service %s has no healthy instance (pass --force to use it anyway)", apierr.ErrInvalid, ref, o.Route)
		}
		return nil
	}
	return fmt.Errorf("%w: origin %s: service %s is not serving (pass --force to use it anyway)", apierr.ErrInvalid, ref, o.Route)
}

// Switch moves all of an entrypoint's traffic to one origin at once,
// ending any shift.
func (e *Entrypoints) Switch(ctx context.Context, name string, req api.SwitchRequest) (api.Entrypoint, error) {
	ref := strings.TrimSpace(req.Origin)
	if ref == "" {
		return api.Entrypoint{}, fmt.Errorf("%w: --to is required: a service (web, app/web) or a URL", apierr.ErrInvalid)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	rec, cfg, rt, err := e.entrypoint(ctx, name)
	if err != nil {
		return api.Entrypoint{}, err
	}
	if err := e.checkOrigin(ctx, rec.App, ref, req.Force); err != nil {
		return api.Entrypoint{}, err
	}
	was := rt.Origin
	rt.Origin, rt.Shares, rt.ShiftID = ref, nil, ""
	if rec, err = e.saveEntrypoint(ctx, rec, cfg, rt); err != nil {
		return api.Entrypoint{}, err
	}
	e.event(rec.App, "", "edge-switch", fmt.Sprintf("entrypoint %s: all traffic to %s (was %s)", name, ref, was))
	return e.entrypointStatus(rec, cfg, rt), nil
}

// Shift sends shares of an entrypoint's traffic to other origins.
func (e *Entrypoints) Shift(ctx context.Context, name string, req api.ShiftRequest) (api.Entrypoint, error) {
	if len(req.Shares) == 0 {
		return api.Entrypoint{}, fmt.Errorf("%w: nothing to shift: pass ORIGIN=PERCENT", apierr.ErrInvalid)
	}
	var sticky bool
	switch req.Sticky {
	case "", "none":
	case "cookie":
		sticky = true
	default:
		return api.Entrypoint{}, fmt.Errorf("%w: --sticky %q: use cookie or none", apierr.ErrInvalid, req.Sticky)
	}
	if req.Header != "" && !headerToken(req.Header) {
		return api.Entrypoint{}, fmt.Errorf("%w: --header %q is not a header name", apierr.ErrInvalid, req.Header)
	}
	rate := 100 * router.DefaultGuardErrorRate
	if req.GuardErrorRate != nil {
		rate = *req.GuardErrorRate
		if math.IsNaN(rate) || rate <= 0 || rate > 100 {
			return api.Entrypoint{}, fmt.Errorf("%w: --guard-error-rate %v: must be a percentage above 0 and at most 100 (or --no-guard)", apierr.ErrInvalid, rate)
		}
	}
	window := router.DefaultGuardWindow
	if req.GuardWindow != "" {
		w, err := time.ParseDuration(req.GuardWindow)
		if err != nil || w < time.Second || w > time.Hour {
			return api.Entrypoint{}, fmt.Errorf("%w: --guard-window %q: must be a duration from 1s to 1h, e.g. 30s", apierr.ErrInvalid, req.GuardWindow)
		}
		window = w
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	rec, cfg, rt, err := e.entrypoint(ctx, name)
	if err != nil {
		return api.Entrypoint{}, err
	}
	refs := make([]string, 0, len(req.Shares))
	for ref := range req.Shares {
		refs = append(refs, ref)
	}
	slices.Sort(refs)
	var (
		shares []api.Share
		total  float64
	)
	for i, ref := range refs {
		p := req.Shares[ref]
		if math.IsNaN(p) || p < 0 || p > 100 {
			return api.Entrypoint{}, fmt.Errorf("%w: %s=%v: a percentage is between 0 and 100", apierr.ErrInvalid, ref, p)
		}
		if sameOrigin(rec.App, ref, rt.Origin) {
			return api.Entrypoint{}, fmt.Errorf("%w: %s is the active origin of %s; it gets what the shares leave (switch with berth edge switch)", apierr.ErrInvalid, ref, name)
		}
		for _, other := range refs[:i] {
			if sameOrigin(rec.App, ref, other) {
				return api.Entrypoint{}, fmt.Errorf("%w: %s and %s are the same origin", apierr.ErrInvalid, other, ref)
			}
		}
		if err := e.checkOrigin(ctx, rec.App, ref, req.Force); err != nil {
			return api.Entrypoint{}, err
		}
		total += p
		shares = append(shares, api.Share{Origin: ref, Percent: p})
	}
	if total > 100 {
		return api.Entrypoint{}, fmt.Errorf("%w: the shares add up to %v%%, more than 100%%", apierr.ErrInvalid, total)
	}
	rt.Shares, rt.Sticky, rt.Header = shares, sticky, req.Header
	rt.NoGuard, rt.GuardRate, rt.GuardWindow = req.NoGuard, rate, window
	rt.ShiftID, rt.Rollback = newID(), nil
	if rec, err = e.saveEntrypoint(ctx, rec, cfg, rt); err != nil {
		return api.Entrypoint{}, err
	}
	var parts []string
	for _, s := range shares {
		parts = append(parts, fmt.Sprintf("%v%% to %s", s.Percent, s.Origin))
	}
	guard := fmt.Sprintf("guard %v%% over %s", rate, window)
	if req.NoGuard {
		guard = "no guard"
	}
	e.event(rec.App, "", "edge-shift", fmt.Sprintf("entrypoint %s: %s; %s keeps %v%% (%s)", name, strings.Join(parts, ", "), rt.Origin, 100-total, guard))
	return e.entrypointStatus(rec, cfg, rt), nil
}

func headerToken(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return s != ""
}

// Maintenance turns an entrypoint's maintenance page on or off.
func (e *Entrypoints) Maintenance(ctx context.Context, name string, on bool) (api.Entrypoint, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	rec, cfg, rt, err := e.entrypoint(ctx, name)
	if err != nil {
		return api.Entrypoint{}, err
	}
	if rt.Maintenance != on {
		rt.Maintenance = on
		if rec, err = e.saveEntrypoint(ctx, rec, cfg, rt); err != nil {
			return api.Entrypoint{}, err
		}
		state := "off: traffic flows again"
		if on {
			state = "on: every request gets the maintenance page (503)"
		}
		e.event(rec.App, "", "edge-maintenance", fmt.Sprintf("entrypoint %s: maintenance %s", name, state))
	}
	return e.entrypointStatus(rec, cfg, rt), nil
}

// Invalidate drops an entrypoint's cached responses matching pattern.
func (e *Entrypoints) Invalidate(ctx context.Context, name, pattern string) (api.InvalidateResult, error) {
	if err := cache.ValidatePattern(pattern); err != nil {
		return api.InvalidateResult{}, fmt.Errorf("%w: %w (write an exact path such as /index.html, or a prefix ending in * such as /static/*)", apierr.ErrInvalid, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	rec, _, _, err := e.entrypoint(ctx, name)
	if err != nil {
		return api.InvalidateResult{}, err
	}
	c := e.caches[name]
	if c == nil {
		return api.InvalidateResult{}, fmt.Errorf("%w: entrypoint %s has no cache (turn it on with cache: {enabled: true} in berth.yaml)", apierr.ErrInvalid, name)
	}
	n, err := c.c.Invalidate(pattern)
	if err != nil {
		return api.InvalidateResult{}, fmt.Errorf("%w: %w", apierr.ErrInvalid, err)
	}
	e.event(rec.App, "", "edge-invalidate", fmt.Sprintf("entrypoint %s: %d cached response(s) matching %s dropped", name, n, pattern))
	return api.InvalidateResult{Removed: n}, nil
}

// GuardTrip records a guard's rollback: the router already sends all
// traffic back; the stored shift is cleared so that it stays so.
func (e *Entrypoints) GuardTrip(t router.GuardTrip) {
	ctx := context.Background()
	e.mu.Lock()
	defer e.mu.Unlock()
	rec, cfg, rt, err := e.entrypoint(ctx, t.Entrypoint)
	if err != nil || rt.ShiftID != t.ID {
		return // replaced meanwhile
	}
	reason := GuardReason(t)
	rt.Shares, rt.ShiftID = nil, ""
	rt.Rollback = &api.GuardRollback{Time: time.Now().UTC(), Reason: reason}
	if _, err := e.saveEntrypoint(ctx, rec, cfg, rt); err != nil {
		e.log.Error("record guard rollback", "entrypoint", t.Entrypoint, "err", err)
	}
	e.event(rec.App, "", "edge-guard-rollback", fmt.Sprintf("entrypoint %s: shift to %s rolled back: %s; all traffic on %s", t.Entrypoint, strings.Join(t.Origins, ", "), reason, rt.Origin))
}

// GuardReason says why a guard tripped, as events and messages tell it.
func GuardReason(t router.GuardTrip) string {
	pct := 0.0
	if t.Requests > 0 {
		pct = 100 * float64(t.Errors) / float64(t.Requests)
	}
	return fmt.Sprintf("%d of %d requests failed (%.1f%%) within %s, over the %v%% threshold", t.Errors, t.Requests, pct, t.Window, 100*t.Threshold)
}

// entrypointStatus is the API's view of an entrypoint.
func (e *Entrypoints) entrypointStatus(rec store.Entrypoint, cfg epConfig, rt epRuntime) api.Entrypoint {
	sp := cfg.Spec
	out := api.Entrypoint{
		Name: sp.Name, App: rec.App, Hosts: sp.Hosts, Origin: rt.Origin, SpecOrigin: cfg.Spec.Origin,
		Shares: rt.Shares, Header: rt.Header, Maintenance: rt.Maintenance, Rollback: rt.Rollback, UpdatedAt: rec.UpdatedAt,
	}
	for _, h := range sp.Hosts {
		if e.httpPort == "80" || e.httpPort == "" {
			out.URLs = append(out.URLs, "http://"+h)
		} else {
			out.URLs = append(out.URLs, "http://"+net.JoinHostPort(h, e.httpPort))
		}
	}
	if len(rt.Shares) > 0 {
		out.Sticky = "none"
		if rt.Sticky {
			out.Sticky = "cookie"
		}
		if !rt.NoGuard {
			out.Guard = &api.Guard{ErrorRate: cmp.Or(rt.GuardRate, 100*router.DefaultGuardErrorRate), Window: cmp.Or(rt.GuardWindow, router.DefaultGuardWindow).String()}
		}
	}
	if f := sp.Failover; f != nil {
		out.Failover = &api.Failover{Origin: f.Origin, On: f.On}
	}
	if c := e.caches[sp.Name]; c != nil {
		st := c.c.Stats()
		out.Cache = &api.EntrypointCache{DefaultTTL: c.ttl.String(), Hits: st.Hits, Misses: st.Misses, Objects: st.Objects, Bytes: st.MemoryBytes + st.DiskBytes}
	}
	for _, r := range sp.Routes {
		er := api.EdgeRoute{Path: r.Path, Origin: r.Origin, MaxBody: r.MaxBody}
		if r.Timeout > 0 {
			er.Timeout = r.Timeout.String()
		}
		out.Routes = append(out.Routes, er)
	}
	return out
}

// Show is the API's view of the entrypoint name.
func (e *Entrypoints) Show(ctx context.Context, name string) (api.Entrypoint, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	rec, cfg, rt, err := e.entrypoint(ctx, name)
	if err != nil {
		return api.Entrypoint{}, err
	}
	return e.entrypointStatus(rec, cfg, rt), nil
}

// Hosts are the hosts a stored entrypoint serves, as its spec declares.
func Hosts(rec store.Entrypoint) ([]string, error) {
	cfg, _, err := decodeEntrypoint(rec)
	return cfg.Spec.Hosts, err
}

// List lists every entrypoint.
func (e *Entrypoints) List(ctx context.Context) ([]api.Entrypoint, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	recs, err := e.store.ListEntrypoints(ctx, "")
	if err != nil {
		return nil, err
	}
	out := []api.Entrypoint{}
	for _, rec := range recs {
		cfg, rt, err := decodeEntrypoint(rec)
		if err != nil {
			return nil, err
		}
		out = append(out, e.entrypointStatus(rec, cfg, rt))
	}
	return out, nil
}

// RedirectHTTPS is the explicit redirect_https of the entrypoint that
// serves host, ok false when none says. It runs for every plain-HTTP
// request: one atomic load and a map lookup.
func (e *Entrypoints) RedirectHTTPS(host string) (redirect, ok bool) {
	if m := e.redirects.Load(); m != nil {
		redirect, ok = (*m)[host]
	}
	return redirect, ok
}

// noteSpec records an installed entrypoint's spec (nil: removed) and
// republishes the explicit redirect_https settings. Call with mu held.
func (e *Entrypoints) noteSpec(name string, sp *spec.Entrypoint) {
	if e.specs == nil {
		e.specs = map[string]spec.Entrypoint{}
	}
	if sp == nil {
		delete(e.specs, name)
	} else {
		e.specs[name] = *sp
	}
	m := map[string]bool{}
	for _, ep := range e.specs {
		if ep.RedirectHTTPS != nil {
			for _, h := range ep.Hosts {
				m[h] = *ep.RedirectHTTPS
			}
		}
	}
	e.redirects.Store(&m)
}

// newID is a shift's identity, told to the router with it so that a guard
// trip of a replaced shift is recognised.
func newID() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
