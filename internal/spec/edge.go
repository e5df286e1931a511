package spec

import (
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The edge: section declares entrypoints: stable host names in front of
// origins that can be switched and shifted without touching DNS.
//
//	edge:
//	  www:
//	    hosts: [www.example.com]
//	    origin: web                       # a service, app/service, or a URL
//	    failover: {origin: https://backup.example.com, on: [502, 503, 504]}
//	    cache: {enabled: true, default_ttl: 60s, key: {cookies: [session]}}
//	    compress: true
//	    redirect_https: true
//	    hsts: 0s
//	    timeout: 60s
//	    max_body: 10MiB
//	    headers: {add: {X-Frame-Options: DENY}, remove: [Server]}
//	    routes:
//	      - {path: /api, origin: api, timeout: 30s, max_body: 10MiB, headers: {add: {X-Frame-Options: DENY}, remove: [Server]}}
//	    error_pages: {502: ./errors/502.html}
//	    distribution: E2QWRUHAPOMQZL      # AWS: adopt this CloudFront distribution

// Entrypoint is one entry under edge:.
type Entrypoint struct {
	Name  string   `json:"name"`
	Hosts []string `json:"hosts"`
	// Origin is a service of this app ("web"), of another app ("app/web"),
	// or an external URL ("https://xyz.awsapprunner.com").
	Origin   string    `json:"origin"`
	Failover *Failover `json:"failover,omitempty"`
	Cache    *Cache    `json:"cache,omitempty"`
	Compress bool      `json:"compress,omitempty"`
	// RedirectHTTPS answers plain HTTP with a redirect to HTTPS; nil means
	// the daemon's default (on for public domains with ACME certificates).
	RedirectHTTPS *bool `json:"redirect_https,omitempty"`
	// HSTS is the Strict-Transport-Security max-age; 0 sends none.
	HSTS time.Duration `json:"hsts,omitempty"`
	// Timeout, MaxBody and Headers apply to every path no route overrides.
	// Timeout 0 means the default request timeout.
	Timeout time.Duration `json:"timeout,omitempty"`
	MaxBody int64         `json:"max_body,omitempty"`
	Headers *Headers      `json:"headers,omitempty"`
	Routes  []EdgeRoute   `json:"routes,omitempty"`
	// ErrorPages maps a 4xx or 5xx status to an HTML file, relative to the
	// spec's directory, read when the spec is deployed.
	ErrorPages map[int]string `json:"error_pages,omitempty"`
	// Distribution is the ID of an existing CloudFront distribution the
	// entrypoint adopts in AWS environments; "" makes berth create one.
	// The local engine ignores it.
	Distribution string `json:"distribution,omitempty"`
}

// Failover is the origin an entrypoint falls back to.
type Failover struct {
	Origin string `json:"origin"`
	// On are the 5xx statuses that fail an idempotent request over;
	// connection failures always do.
	On []int `json:"on"`
}

// Cache turns an entrypoint's cache on.
type Cache struct {
	Enabled bool `json:"enabled"`
	// DefaultTTL is the freshness of responses that may be stored and say
	// nothing about it; 0 leaves only the RFC 9111 heuristic.
	DefaultTTL time.Duration `json:"default_ttl,omitempty"`
	// Key adds request values to the cache key.
	Key *CacheKey `json:"key,omitempty"`
}

// CacheKey lists what besides method, host, path and query tells cached
// responses apart, in the shape of a CDN's cache policy.
type CacheKey struct {
	// Cookies are cookie names whose values are part of the key: each
	// session gets its own cached pages. A request with a cookie not
	// listed here is cached only when the response says public or
	// s-maxage.
	Cookies []string `json:"cookies,omitempty"`
}

// Headers are response headers set and removed at the edge.
type Headers struct {
	Add    map[string]string `json:"add,omitempty"`
	Remove []string          `json:"remove,omitempty"`
}

// EdgeRoute gives a path prefix of an entrypoint its own origin or
// controls. Zero values inherit the entrypoint's.
type EdgeRoute struct {
	Path    string        `json:"path"`
	Origin  string        `json:"origin,omitempty"`
	Timeout time.Duration `json:"timeout,omitempty"`
	MaxBody int64         `json:"max_body,omitempty"`
	Headers *Headers      `json:"headers,omitempty"`
}

// DefaultFailoverOn are the statuses that fail over when failover: names no
// on: list.
var DefaultFailoverOn = []int{502, 503, 504}

// MaxCacheTTL bounds cache.default_ttl: a year is already "forever" for a
// response that says nothing about its freshness.
const MaxCacheTTL = 365 * 24 * time.Hour

var (
	entrypointKeys = []string{"hosts", "origin", "url", "failover", "cache", "compress", "redirect_https", "hsts",
		"timeout", "max_body", "headers", "routes", "error_pages", "distribution"}
	failoverKeys  = []string{"origin", "url", "on"}
	edgeCacheKeys = []string{"enabled", "default_ttl", "key"}
	cacheKeyKeys  = []string{"cookies"}
	headersKeys   = []string{"add", "remove"}
	edgeRouteKeys = []string{"path", "origin", "url", "timeout", "max_body", "headers"}
)

// distributionIDRE is a CloudFront distribution ID: E and upper-case
// letters and digits (E2QWRUHAPOMQZL).
var distributionIDRE = regexp.MustCompile(`^E[A-Z0-9]{7,19}$`)

// CheckDistributionID returns "" for a CloudFront distribution ID, else the
// message.
func CheckDistributionID(id string) string {
	if !distributionIDRE.MatchString(id) {
		return fmt.Sprintf("must be a CloudFront distribution ID such as E2QWRUHAPOMQZL (aws cloudfront list-distributions), not %q", id)
	}
	return ""
}

// IsOriginURL reports whether an origin reference is an external URL rather
// than a service.
func IsOriginURL(ref string) bool { return strings.Contains(ref, "://") }

// CheckOriginURL checks an external origin: an absolute http or https URL
// with a host, optionally a path prefix; no credentials, query or fragment.
// It returns "" when fine, else the message.
func CheckOriginURL(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Sprintf("invalid origin URL %q: %v", raw, unwrapURLError(err))
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Sprintf("invalid origin URL %q: the scheme must be http or https", raw)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Sprintf("invalid origin URL %q: no host", raw)
	case u.User != nil:
		return fmt.Sprintf("invalid origin URL %q: credentials in the URL are not supported", raw)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return fmt.Sprintf("invalid origin URL %q: an origin has no query or fragment", raw)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Sprintf("invalid origin URL %q: bad port %q", raw, p)
		}
	}
	return ""
}

func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// CheckOriginRef checks an origin reference as a user writes it: a URL, a
// service name, or app/service. Whether the service exists is not its
// business.
func CheckOriginRef(ref string) string {
	switch {
	case ref == "":
		return "must not be empty: name a service (web, or app/web) or a URL (https://...)"
	case IsOriginURL(ref):
		return CheckOriginURL(ref)
	}
	app, svc, cross := strings.Cut(ref, "/")
	if !cross {
		return checkName("service", ref)
	}
	if msg := checkName("app", app); msg != "" {
		return fmt.Sprintf("invalid origin %q: %s", ref, msg)
	}
	if msg := checkName("service", svc); msg != "" {
		return fmt.Sprintf("invalid origin %q: %s", ref, msg)
	}
	return ""
}

// headerNameRE is an HTTP field name (RFC 9110 token).
var headerNameRE = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")

// managedHeaders are framing and hop-by-hop fields the edge itself manages;
// changing them would break the response.
var managedHeaders = []string{"Connection", "Content-Length", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func checkHeaderName(name string) string {
	if !headerNameRE.MatchString(name) {
		return fmt.Sprintf("invalid header name %q: use letters, digits and '-'", name)
	}
	if c := canonicalHeader(name); slices.Contains(managedHeaders, c) {
		return fmt.Sprintf("header %s is managed by the edge and cannot be changed", c)
	}
	return ""
}

// canonicalHeader is textproto's canonical form, written out to keep spec
// free of net/http.
func canonicalHeader(s string) string {
	b := []byte(strings.ToLower(s))
	upper := true
	for i, c := range b {
		if upper && 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
		upper = c == '-'
	}
	return string(b)
}

func checkHeaderValue(v string) string {
	if strings.ContainsAny(v, "\r\n\x00") {
		return "a header value must be one line"
	}
	return ""
}

// edge decodes edge: NAME: {...} in file order.
func (d *decoder) edge(s *Spec, e entry) error {
	return namedSection(d, e, "edge", "entrypoint", d.entrypoint, func(name string, ep *Entrypoint) {
		if s.Edge == nil {
			s.Edge = map[string]*Entrypoint{}
		}
		s.Edge[name] = ep
		s.EdgeOrder = append(s.EdgeOrder, name)
	})
}

// entrypoint decodes one entrypoint.
func (d *decoder) entrypoint(name string, n *yaml.Node, path string) (*Entrypoint, error) {
	if deref(n).Kind != yaml.MappingNode {
		return nil, d.errAt(n, path, "must be a mapping with hosts and origin, not %s", describe(deref(n)))
	}
	entries, err := d.mapping(n, path, entrypointKeys)
	if err != nil {
		return nil, err
	}
	ep := &Entrypoint{Name: name}
	var originKey *yaml.Node
	for _, e := range entries {
		f := join(path, e.key)
		d.mark(f, e.keyNode)
		switch e.key {
		case "hosts":
			ep.Hosts, err = d.hosts(e.val, f)
		case "origin", "url":
			if originKey != nil {
				return nil, d.errAt(e.keyNode, f, "origin is already given (line %d); write either origin: or url:", originKey.Line)
			}
			originKey = e.keyNode
			ep.Origin, err = d.originRef(e.val, f, e.key == "url")
		case "failover":
			ep.Failover, err = d.failover(e.val, f)
		case "cache":
			ep.Cache, err = d.edgeCache(e.val, f)
		case "compress":
			ep.Compress, err = d.boolean(e.val, f)
		case "redirect_https":
			var on bool
			on, err = d.boolean(e.val, f)
			ep.RedirectHTTPS = &on
		case "hsts":
			ep.HSTS, err = d.durationOrZero(e.val, f)
		case "timeout":
			ep.Timeout, err = d.duration(e.val, f)
		case "max_body":
			ep.MaxBody, err = d.size(e.val, f)
		case "headers":
			ep.Headers, err = d.headers(e.val, f)
		case "routes":
			ep.Routes, err = d.edgeRoutes(e.val, f)
		case "error_pages":
			ep.ErrorPages, err = d.errorPages(e.val, f)
		case "distribution":
			if ep.Distribution, err = d.str(e.val, f); err == nil {
				if msg := CheckDistributionID(ep.Distribution); msg != "" {
					err = d.errAt(e.val, f, "%s", msg)
				}
			}
		}
		if err != nil {
			return nil, err
		}
	}
	if len(ep.Hosts) == 0 {
		return nil, d.errAt(n, join(path, "hosts"), "is required: the host names the entrypoint answers, e.g. hosts: [www.example.com]")
	}
	if originKey == nil {
		return nil, d.errAt(n, join(path, "origin"), "is required: a service (origin: web) or a URL (url: https://...)")
	}
	return ep, nil
}

// hosts decodes an entrypoint's host names.
func (d *decoder) hosts(n *yaml.Node, path string) ([]string, error) {
	names, err := d.stringList(n, path, "[www.example.com]", true)
	if err != nil {
		return nil, err
	}
	items := deref(n).Content
	first := make(map[string]int, len(names))
	for i, h := range names {
		if msg := checkDomain(h); msg != "" {
			return nil, d.errAt(items[i], index(path, i), "%s", strings.Replace(msg, "domain", "host", 1))
		}
		if line, dup := first[h]; dup {
			return nil, d.errAt(items[i], index(path, i), "duplicate host %q (also at line %d)", h, line)
		}
		first[h] = deref(items[i]).Line
	}
	return names, nil
}

// originRef decodes an origin; with isURL it must be a URL.
func (d *decoder) originRef(n *yaml.Node, path string, isURL bool) (string, error) {
	ref, err := d.str(n, path)
	if err != nil {
		return "", err
	}
	msg := CheckOriginRef(ref)
	if msg == "" && isURL && !IsOriginURL(ref) {
		msg = fmt.Sprintf("must be a URL such as https://xyz.awsapprunner.com; for a service write origin: %s", ref)
	}
	if msg != "" {
		return "", d.errAt(n, path, "%s", msg)
	}
	return ref, nil
}

func (d *decoder) failover(n *yaml.Node, path string) (*Failover, error) {
	entries, err := d.mapping(n, path, failoverKeys)
	if err != nil {
		return nil, err
	}
	f := &Failover{}
	var originKey *yaml.Node
	hasOn := false
	for _, e := range entries {
		ef := join(path, e.key)
		d.mark(ef, e.keyNode)
		switch e.key {
		case "origin", "url":
			if originKey != nil {
				return nil, d.errAt(e.keyNode, ef, "origin is already given (line %d); write either origin: or url:", originKey.Line)
			}
			originKey = e.keyNode
			f.Origin, err = d.originRef(e.val, ef, e.key == "url")
		case "on":
			hasOn = true
			f.On, err = d.statusList(e.val, ef)
		}
		if err != nil {
			return nil, err
		}
	}
	if originKey == nil {
		return nil, d.errAt(n, join(path, "origin"), "is required: the origin to fall back to")
	}
	if !hasOn {
		f.On = slices.Clone(DefaultFailoverOn)
	}
	return f, nil
}

// statusList decodes a list of 5xx statuses.
func (d *decoder) statusList(n *yaml.Node, path string) ([]int, error) {
	n = deref(n)
	if n.Kind != yaml.SequenceNode {
		return nil, d.errAt(n, path, "must be a list of 5xx statuses, e.g. [502, 503, 504], not %s", describe(n))
	}
	if err := d.visit(n, len(n.Content)); err != nil {
		return nil, err
	}
	var out []int
	for i, item := range n.Content {
		c, err := d.integer(item, index(path, i), 500, 599)
		if err != nil {
			return nil, err
		}
		if slices.Contains(out, c) {
			return nil, d.errAt(item, index(path, i), "duplicate status %d", c)
		}
		out = append(out, c)
	}
	return out, nil
}

func (d *decoder) edgeCache(n *yaml.Node, path string) (*Cache, error) {
	n = deref(n)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == tagBool {
		on, err := d.boolean(n, path)
		return &Cache{Enabled: on}, err
	}
	entries, err := d.mapping(n, path, edgeCacheKeys)
	if err != nil {
		return nil, err
	}
	c := &Cache{Enabled: true}
	for _, e := range entries {
		f := join(path, e.key)
		d.mark(f, e.keyNode)
		switch e.key {
		case "enabled":
			c.Enabled, err = d.boolean(e.val, f)
		case "default_ttl":
			c.DefaultTTL, err = d.durationOrZero(e.val, f)
			if err == nil && c.DefaultTTL > MaxCacheTTL {
				err = d.errAt(e.val, f, "must be at most %s", MaxCacheTTL)
			}
		case "key":
			c.Key, err = d.cacheKey(e.val, f)
		}
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (d *decoder) cacheKey(n *yaml.Node, path string) (*CacheKey, error) {
	entries, err := d.mapping(n, path, cacheKeyKeys)
	if err != nil {
		return nil, err
	}
	k := &CacheKey{}
	for _, e := range entries {
		f := join(path, e.key)
		d.mark(f, e.keyNode)
		if e.key != "cookies" {
			continue
		}
		if k.Cookies, err = d.stringList(e.val, f, "[session]", false); err != nil {
			return nil, err
		}
		items := deref(e.val).Content
		for i, name := range k.Cookies {
			if msg := checkCookieName(name); msg != "" {
				return nil, d.errAt(items[i], index(f, i), "%s", msg)
			}
			if j := slices.Index(k.Cookies[:i], name); j >= 0 {
				return nil, d.errAt(items[i], index(f, i), "duplicate cookie %q (also at line %d)", name, items[j].Line)
			}
		}
	}
	return k, nil
}

// checkCookieName returns "" for a valid cookie name (an RFC 6265 token),
// else the message.
func checkCookieName(name string) string {
	if name == "" {
		return "empty cookie name"
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return fmt.Sprintf("invalid cookie name %q: use letters, digits and !#$%%&'*+-.^_`|~ (no spaces, '=', ';' or quotes)", name)
		}
	}
	return ""
}

// durationOrZero decodes a duration that may be 0s (meaning "off").
func (d *decoder) durationOrZero(n *yaml.Node, path string) (time.Duration, error) {
	n = deref(n)
	const hint = "must be a duration like 60s, 10m or 0s"
	if n.Kind != yaml.ScalarNode || n.ShortTag() != tagStr {
		if n.Kind == yaml.ScalarNode && n.ShortTag() == tagInt && n.Value == "0" {
			return 0, nil
		}
		return 0, d.errAt(n, path, "%s, not %s", hint, describe(n))
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		e := d.errAt(n, path, "%s", hint)
		e.Err = err
		return 0, e
	}
	if v < 0 {
		return 0, d.errAt(n, path, "must not be negative")
	}
	return v, nil
}

// size decodes a positive byte size such as 10MiB.
func (d *decoder) size(n *yaml.Node, path string) (int64, error) {
	n = deref(n)
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case tagInt, tagFloat:
			return 0, d.errAt(n, path, "%s", ErrSizeNoUnit.Error())
		case tagStr:
			b, err := ParseSize(n.Value)
			if err != nil {
				e := d.errAt(n, path, "%s", sizeMsg(err))
				e.Err = err
				return 0, e
			}
			return b, nil
		}
	}
	return 0, d.errAt(n, path, "must be a size like 10MiB, not %s", describe(n))
}

func (d *decoder) headers(n *yaml.Node, path string) (*Headers, error) {
	entries, err := d.mapping(n, path, headersKeys)
	if err != nil {
		return nil, err
	}
	h := &Headers{}
	for _, e := range entries {
		f := join(path, e.key)
		d.mark(f, e.keyNode)
		switch e.key {
		case "add":
			var adds []entry
			if adds, err = d.mapping(e.val, f, nil); err != nil {
				return nil, err
			}
			h.Add = map[string]string{}
			seen := map[string]int{}
			for _, a := range adds {
				if msg := checkHeaderName(a.key); msg != "" {
					return nil, d.errAt(a.keyNode, f, "%s", msg)
				}
				if line, dup := seen[canonicalHeader(a.key)]; dup {
					return nil, d.errAt(a.keyNode, f, "duplicate header %q (also at line %d)", a.key, line)
				}
				seen[canonicalHeader(a.key)] = a.keyNode.Line
				v, err := d.scalarText(a.val, join(f, a.key))
				if err != nil {
					return nil, err
				}
				if msg := checkHeaderValue(v); msg != "" {
					return nil, d.errAt(a.val, join(f, a.key), "%s", msg)
				}
				h.Add[a.key] = v
			}
		case "remove":
			if h.Remove, err = d.stringList(e.val, f, "[Server, X-Powered-By]", false); err != nil {
				return nil, err
			}
			items := deref(e.val).Content
			for i, name := range h.Remove {
				if msg := checkHeaderName(name); msg != "" {
					return nil, d.errAt(items[i], index(f, i), "%s", msg)
				}
			}
		}
	}
	return h, nil
}

func (d *decoder) edgeRoutes(n *yaml.Node, path string) ([]EdgeRoute, error) {
	n = deref(n)
	if isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, d.errAt(n, path, "must be a list of {path, origin, ...}, not %s", describe(n))
	}
	if err := d.visit(n, len(n.Content)); err != nil {
		return nil, err
	}
	var routes []EdgeRoute
	firstLine := map[string]int{}
	for i, item := range n.Content {
		f := index(path, i)
		d.mark(f, item)
		if deref(item).Kind != yaml.MappingNode {
			return nil, d.errAt(item, f, "must be a mapping with path and origin or controls, not %s", describe(deref(item)))
		}
		entries, err := d.mapping(item, f, edgeRouteKeys)
		if err != nil {
			return nil, err
		}
		var r EdgeRoute
		var hasPath bool
		var originKey *yaml.Node
		for _, e := range entries {
			ef := join(f, e.key)
			d.mark(ef, e.keyNode)
			switch e.key {
			case "path":
				hasPath = true
				if r.Path, err = d.str(e.val, ef); err == nil {
					if msg := checkPath(r.Path, false); msg != "" {
						err = d.errAt(e.val, ef, "%s; this route could never match", msg)
					}
				}
			case "origin", "url":
				if originKey != nil {
					return nil, d.errAt(e.keyNode, ef, "origin is already given (line %d); write either origin: or url:", originKey.Line)
				}
				originKey = e.keyNode
				r.Origin, err = d.originRef(e.val, ef, e.key == "url")
			case "timeout":
				r.Timeout, err = d.duration(e.val, ef)
			case "max_body":
				r.MaxBody, err = d.size(e.val, ef)
			case "headers":
				r.Headers, err = d.headers(e.val, ef)
			}
			if err != nil {
				return nil, err
			}
		}
		if !hasPath {
			return nil, d.errAt(item, join(f, "path"), "is required, e.g. path: /api")
		}
		if line, dup := firstLine[r.Path]; dup {
			return nil, d.errAt(item, join(f, "path"), "duplicate route path %q (also at line %d)", r.Path, line)
		}
		firstLine[r.Path] = deref(item).Line
		routes = append(routes, r)
	}
	return routes, nil
}

func (d *decoder) errorPages(n *yaml.Node, path string) (map[int]string, error) {
	entries, err := d.mapping(n, path, nil)
	if err != nil {
		return nil, err
	}
	out := make(map[int]string, len(entries))
	for _, e := range entries {
		code, cerr := strconv.Atoi(e.key)
		if cerr != nil || code < 400 || code > 599 {
			return nil, d.errAt(e.keyNode, path, "%q is not a 4xx or 5xx status; error pages replace error answers, e.g. 502: ./errors/502.html", e.key)
		}
		f := join(path, e.key)
		d.mark(f, e.keyNode)
		file, err := d.str(e.val, f)
		if err != nil {
			return nil, err
		}
		if file == "" {
			return nil, d.errAt(e.val, f, "must name an HTML file, relative to the spec")
		}
		out[code] = file
	}
	return out, nil
}

// edge checks the entrypoints as a whole: hosts owned once across the app,
// origins that name services able to receive HTTP.
func (v *validator) edge() error {
	s := v.s
	owner := map[string]string{} // host -> "service X" or "entrypoint Y"
	for _, name := range ordered(s.ServiceOrder, s.Services) {
		if svc := s.Services[name]; svc != nil {
			for _, h := range svc.Domains {
				owner[h] = "service " + name
			}
		}
	}
	for _, name := range ordered(s.EdgeOrder, s.Edge) {
		if err := v.entrypoint(name, s.Edge[name], owner); err != nil {
			return err
		}
	}
	return nil
}

func (v *validator) entrypoint(name string, ep *Entrypoint, owner map[string]string) error {
	path := join("edge", name)
	if msg := checkName("entrypoint", name); msg != "" {
		return v.fail("edge", "%s", msg)
	}
	if ep == nil {
		return v.fail(path, "is empty; it needs hosts and origin")
	}
	if ep.Name != name {
		return v.fail(path, "name %q does not match its key %q", ep.Name, name)
	}
	if len(ep.Hosts) == 0 {
		return v.fail(join(path, "hosts"), "is required: the host names the entrypoint answers")
	}
	for i, h := range ep.Hosts {
		f := index(join(path, "hosts"), i)
		if msg := checkDomain(h); msg != "" {
			return v.fail(f, "%s", strings.Replace(msg, "domain", "host", 1))
		}
		if o, taken := owner[h]; taken {
			if o == "entrypoint "+name {
				return v.fail(f, "duplicate host %q", h)
			}
			return v.fail(f, "host %q is already used by %s", h, o)
		}
		owner[h] = "entrypoint " + name
	}
	if err := v.origin(join(path, "origin"), ep.Origin); err != nil {
		return err
	}
	if f := ep.Failover; f != nil {
		fp := join(path, "failover")
		if err := v.origin(join(fp, "origin"), f.Origin); err != nil {
			return err
		}
		if f.Origin == ep.Origin {
			return v.fail(join(fp, "origin"), "is the entrypoint's own origin; fail over to another one")
		}
		for i, c := range f.On {
			if c < 500 || c > 599 {
				return v.fail(index(join(fp, "on"), i), "%s", rangeMsg(500, 599))
			}
		}
	}
	if c := ep.Cache; c != nil && (c.DefaultTTL < 0 || c.DefaultTTL > MaxCacheTTL) {
		return v.fail(join(path, "cache.default_ttl"), "must be between 0s and %s", MaxCacheTTL)
	}
	if c := ep.Cache; c != nil && c.Key != nil {
		for i, name := range c.Key.Cookies {
			if msg := checkCookieName(name); msg != "" {
				return v.fail(index(join(path, "cache.key.cookies"), i), "%s", msg)
			}
			if slices.Contains(c.Key.Cookies[:i], name) {
				return v.fail(index(join(path, "cache.key.cookies"), i), "duplicate cookie %q", name)
			}
		}
	}
	if ep.Distribution != "" {
		if msg := CheckDistributionID(ep.Distribution); msg != "" {
			return v.fail(join(path, "distribution"), "%s", msg)
		}
	}
	if ep.HSTS < 0 {
		return v.fail(join(path, "hsts"), "must not be negative")
	}
	if err := v.controls(path, ep.Timeout, ep.MaxBody, ep.Headers); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, r := range ep.Routes {
		f := index(join(path, "routes"), i)
		if msg := checkPath(r.Path, false); msg != "" {
			return v.fail(join(f, "path"), "%s; this route could never match", msg)
		}
		if seen[r.Path] {
			return v.fail(join(f, "path"), "duplicate route path %q", r.Path)
		}
		seen[r.Path] = true
		if r.Origin != "" {
			if err := v.origin(join(f, "origin"), r.Origin); err != nil {
				return err
			}
		}
		if err := v.controls(f, r.Timeout, r.MaxBody, r.Headers); err != nil {
			return err
		}
	}
	for _, code := range slices.Sorted(maps.Keys(ep.ErrorPages)) {
		f := join(join(path, "error_pages"), strconv.Itoa(code))
		if code < 400 || code > 599 {
			return v.fail(join(path, "error_pages"), "%d is not a 4xx or 5xx status", code)
		}
		if ep.ErrorPages[code] == "" {
			return v.fail(f, "must name an HTML file, relative to the spec")
		}
	}
	return nil
}

// origin checks an origin reference; a bare service name must be a service
// of this app with a port.
func (v *validator) origin(path, ref string) error {
	if msg := CheckOriginRef(ref); msg != "" {
		return v.fail(path, "%s", msg)
	}
	if IsOriginURL(ref) || strings.Contains(ref, "/") {
		return nil
	}
	svc, ok := v.s.Services[ref]
	switch {
	case !ok || svc == nil:
		return v.fail(path, "unknown service %q; services are: %s (or write app/service, or a URL)", ref, strings.Join(ordered(v.s.ServiceOrder, v.s.Services), ", "))
	case svc.Port == 0:
		return v.fail(path, "service %q has no port, so it cannot receive requests", ref)
	}
	return nil
}

func (v *validator) controls(path string, timeout time.Duration, maxBody int64, h *Headers) error {
	if timeout < 0 {
		return v.fail(join(path, "timeout"), "%s", checkDuration(timeout))
	}
	if maxBody < 0 {
		return v.fail(join(path, "max_body"), "%s", ErrSizeSyntax.Error())
	}
	if h == nil {
		return nil
	}
	for _, k := range sortedKeys(h.Add) {
		if msg := checkHeaderName(k); msg != "" {
			return v.fail(join(path, "headers.add"), "%s", msg)
		}
		if msg := checkHeaderValue(h.Add[k]); msg != "" {
			return v.fail(join(path, "headers.add."+k), "%s", msg)
		}
	}
	for i, k := range h.Remove {
		if msg := checkHeaderName(k); msg != "" {
			return v.fail(index(join(path, "headers.remove"), i), "%s", msg)
		}
	}
	return nil
}
