package spec

import (
	"fmt"
	"regexp"
	"time"

	"gopkg.in/yaml.v3"
)

// Load-balancer and resource controls of a service, ALB and ECS style:
//
//	sticky: true                      # or {cookie: NAME}
//	drain: 30s                        # in-flight requests may finish for this long
//	slow_start: 10s                   # a new instance's share ramps up over this
//	max_concurrency: 50               # or {requests: 50, queue: 1s}
//	pids: 256                         # process/thread limit per container

// Sticky keeps each client on the instance that answered it first, with a
// cookie naming that instance. A client whose instance left is moved to
// another one (and its cookie rewritten).
type Sticky struct {
	Cookie string `json:"cookie"`
}

// ConcurrencyLimit caps the requests in flight per instance. A request that
// finds every instance at the cap waits up to Queue for a free slot, then
// gets 503.
type ConcurrencyLimit struct {
	Requests int           `json:"requests"`
	Queue    time.Duration `json:"queue"`
}

// Defaults and limits of the controls.
const (
	// DefaultQueue is how long a request waits for a slot when every
	// instance is at max_concurrency.
	DefaultQueue = time.Second
	// MaxQueue bounds max_concurrency.queue: a longer wait is a timeout,
	// not a queue.
	MaxQueue = time.Minute
	// MaxDrain and MaxSlowStart bound drain and slow_start.
	MaxDrain     = time.Hour
	MaxSlowStart = time.Hour
	// MinPids and MaxPids bound pids. Go and Java runtimes start a dozen
	// threads, which count as processes here; fewer than MinPids only makes
	// containers fail in confusing ways.
	MinPids = 16
	MaxPids = 1 << 22
)

// StickyCookie is the cookie name `sticky: true` uses for a service.
func StickyCookie(service string) string { return "berth_sticky_" + service }

var (
	stickyKeys      = []string{"cookie"}
	concurrencyKeys = []string{"requests", "queue"}
)

// cookieRE is the subset of RFC 6265 cookie-name characters a cookie name
// may use here.
var cookieRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

func checkCookie(name string) string {
	if cookieRE.MatchString(name) {
		return ""
	}
	return fmt.Sprintf("invalid cookie name %q: use 1-64 characters of letters, digits, '_', '.' and '-'", name)
}

// sticky decodes `sticky: true|false` or `sticky: {cookie: NAME}`.
func (d *decoder) sticky(n *yaml.Node, path, service string) (*Sticky, error) {
	n = deref(n)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == tagBool {
		on, err := d.boolean(n, path)
		if err != nil || !on {
			return nil, err
		}
		return &Sticky{Cookie: StickyCookie(service)}, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, d.errAt(n, path, "must be true, false or {cookie: NAME}, not %s", describe(n))
	}
	entries, err := d.mapping(n, path, stickyKeys)
	if err != nil {
		return nil, err
	}
	st := &Sticky{Cookie: StickyCookie(service)}
	for _, e := range entries {
		f := join(path, e.key)
		d.mark(f, e.keyNode)
		if st.Cookie, err = d.str(e.val, f); err != nil {
			return nil, err
		}
		if msg := checkCookie(st.Cookie); msg != "" {
			return nil, d.errAt(e.val, f, "%s", msg)
		}
	}
	return st, nil
}

// maxConcurrency decodes `max_concurrency: N` or `{requests: N, queue: D}`.
func (d *decoder) maxConcurrency(n *yaml.Node, path string) (*ConcurrencyLimit, error) {
	n = deref(n)
	mc := &ConcurrencyLimit{Queue: DefaultQueue}
	if n.Kind != yaml.MappingNode {
		if n.Kind != yaml.ScalarNode || n.ShortTag() != tagInt {
			return nil, d.errAt(n, path, "must be an integer (requests in flight per instance) or {requests: N, queue: 1s}, not %s", describe(n))
		}
		v, err := d.integer(n, path, 1, MaxConcurrency)
		mc.Requests = v
		return mc, err
	}
	entries, err := d.mapping(n, path, concurrencyKeys)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		f := join(path, e.key)
		d.mark(f, e.keyNode)
		switch e.key {
		case "requests":
			mc.Requests, err = d.integer(e.val, f, 1, MaxConcurrency)
		case "queue":
			if mc.Queue, err = d.duration(e.val, f); err == nil && mc.Queue > MaxQueue {
				err = d.errAt(e.val, f, "must be at most %s: requests wait this long for a free instance", MaxQueue)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	if mc.Requests == 0 {
		return nil, d.errAt(n, join(path, "requests"), "is required: the requests in flight one instance may carry, e.g. requests: 50")
	}
	return mc, nil
}

// pids decodes a process limit.
func (d *decoder) pids(n *yaml.Node, path string) (int64, error) {
	v, err := d.integer(n, path, MinPids, MaxPids)
	return int64(v), err
}

// lb checks the load-balancer and resource controls of a service.
func (v *validator) lb(path string, svc *Service) error {
	if svc.Pids != 0 && (svc.Pids < MinPids || svc.Pids > MaxPids) {
		return v.fail(join(path, "pids"), "%s", rangeMsg(MinPids, MaxPids))
	}
	for _, name := range ordered(svc.SidecarOrder, svc.Sidecars) {
		if sc := svc.Sidecars[name]; sc != nil && sc.Pids != 0 && (sc.Pids < MinPids || sc.Pids > MaxPids) {
			return v.fail(join(join(join(path, "sidecars"), name), "pids"), "%s", rangeMsg(MinPids, MaxPids))
		}
	}
	httpOnly := []struct {
		key string
		set bool
	}{
		{"sticky", svc.Sticky != nil},
		{"drain", svc.Drain != 0},
		{"slow_start", svc.SlowStart != 0},
		{"max_concurrency", svc.MaxConcurrency != nil},
	}
	for _, c := range httpOnly {
		if c.set && svc.Port == 0 {
			return v.fail(join(path, c.key), "%s", msgNeedsPort)
		}
	}
	if st := svc.Sticky; st != nil {
		if msg := checkCookie(st.Cookie); msg != "" {
			return v.fail(join(join(path, "sticky"), "cookie"), "%s", msg)
		}
	}
	if svc.Drain != 0 {
		if msg := checkDuration(svc.Drain); msg != "" {
			return v.fail(join(path, "drain"), "%s", msg)
		}
		if svc.Drain > MaxDrain {
			return v.fail(join(path, "drain"), "must be at most %s", MaxDrain)
		}
	}
	if svc.SlowStart != 0 {
		if msg := checkDuration(svc.SlowStart); msg != "" {
			return v.fail(join(path, "slow_start"), "%s", msg)
		}
		if svc.SlowStart > MaxSlowStart {
			return v.fail(join(path, "slow_start"), "must be at most %s", MaxSlowStart)
		}
	}
	if mc := svc.MaxConcurrency; mc != nil {
		f := join(path, "max_concurrency")
		if mc.Requests < 1 || mc.Requests > MaxConcurrency {
			return v.fail(join(f, "requests"), "%s", rangeMsg(1, MaxConcurrency))
		}
		if msg := checkDuration(mc.Queue); msg != "" {
			return v.fail(join(f, "queue"), "%s", msg)
		}
		if mc.Queue > MaxQueue {
			return v.fail(join(f, "queue"), "must be at most %s: requests wait this long for a free instance", MaxQueue)
		}
	}
	return nil
}
