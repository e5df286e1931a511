package autoscale

// The autoscaler's decisions, apart from their effects (autoscaler.go).
// Every tick the autoscaler observes a service (its load at the router,
// its instance counts, its spec's scale:) and a scaler, which holds what it
// observed before, turns that into a plan:
//
//	observation ──▶ scaler.decide ──▶ Plan{Action, N, Why}
//	                 (windows, panic)        │
//	                                         ▼
//	                           Wait │ Hold │ Up │ Down │ ToZero
//
// decide has no effects: no clock, no router, no daemon state. The same
// observations give the same plans, which the table tests in scaler_test.go
// check rule by rule.

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/berth-dev/berth/internal/router"
	"github.com/berth-dev/berth/internal/spec"
)

// observation is what the autoscaler read of one service at one tick.
type observation struct {
	at time.Time
	// load is the service's route at the router: requests in flight and
	// requests held for a wake.
	load router.RouteLoad
	// requests is each instance's request count at the router (only the
	// instances it knows), to see requests too short to be caught in
	// flight.
	requests map[string]uint64
	// wokeAt is when a held request last asked for an instance.
	wokeAt time.Time
	// ready is the service's healthy instances; current the instances it
	// wants now.
	ready, current int
	scale          spec.Scale
	// frozen: a deploy, rollback or pause owns the instance set. The load
	// is recorded, nothing is decided.
	frozen bool
}

// Action is what a plan does to a service's instance count.
type Action int

const (
	Wait   Action = iota // frozen: the load is watched, nothing decided
	Hold                 // keep the current count
	Up                   // start instances
	Down                 // drain and park instances, keeping at least one
	ToZero               // drain and park every instance
)

func (a Action) String() string {
	switch a {
	case Wait:
		return "wait"
	case Hold:
		return "hold"
	case Up:
		return "up"
	case Down:
		return "down"
	case ToZero:
		return "zero"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Plan is what the autoscaler wants for a service, and why.
type Plan struct {
	Action Action
	// N is the instance count to run (the current one unless the action
	// changes it).
	N int
	// Why explains a change from the current count, for the event.
	Why string
	// The observation behind it, for status and metrics.
	Stable, Panic float64
	Panicking     bool
}

// panicThreshold is how many times the ready instances the panic window
// must ask for to panic (Knative's 200%).
const panicThreshold = 2.0

// sample is one reading of a service's concurrency.
type sample struct {
	at time.Time
	c  float64
}

// scaler holds one service's windows: what the autoscaler observed of it
// since it started watching its current revision. It is owned by the
// autoscaler loop.
type scaler struct {
	cfg Tuning
	// since is when the scaler started watching: it scales down only after
	// a full StableWindow of samples.
	since      time.Time
	samples    []sample // oldest first, within StableWindow
	lastActive time.Time
	// panicSince is when the panic window last asked for 2× (zero: calm);
	// maxPanic is the highest count decided while panicking.
	panicSince time.Time
	maxPanic   int
	// requests is each instance's request count at the last tick, to see
	// requests too short to be caught in flight by a sample.
	requests map[string]uint64
	// rev is the revision watched; a new one starts a new scaler.
	rev int
	// wants are the recent stable-window counts: a scale down goes only as
	// low as the highest of them over the panic window, so an average that
	// hovers on a boundary does not make the count flap.
	wants []sample
}

func newScaler(cfg Tuning, now time.Time) *scaler {
	return &scaler{cfg: cfg, since: now, lastActive: now, requests: map[string]uint64{}}
}

// decide records the observation in the windows and returns the plan for
// the service.
func (sc *scaler) decide(obs observation) Plan {
	// In this order: sawRequests keeps the counts for the next tick,
	// whatever the rest says, and a wake counts only if it came after the
	// last activity seen.
	active := sc.sawRequests(obs.requests) || obs.load.Held > 0 || obs.wokeAt.After(sc.lastActive)
	sc.observe(obs.at, float64(obs.load.InFlight+obs.load.Held), active)
	if obs.frozen {
		return Plan{Action: Wait, N: obs.current}
	}
	return sc.plan(obs.at, obs.scale, obs.ready, obs.current)
}

// sawRequests reports whether any instance answered a request since the
// last tick, given each instance's request count now.
func (sc *scaler) sawRequests(requests map[string]uint64) bool {
	seen := false
	for id, n := range requests {
		if n != sc.requests[id] {
			seen = seen || n > 0
		}
	}
	sc.requests = requests
	return seen
}

// observe records the concurrency c seen at now; active says a request was
// seen since the last tick.
func (sc *scaler) observe(now time.Time, c float64, active bool) {
	if active || c > 0 {
		sc.lastActive = now
	}
	sc.samples = append(sc.samples, sample{at: now, c: c})
	cut := now.Add(-sc.cfg.StableWindow)
	i := 0
	for i < len(sc.samples) && !sc.samples[i].at.After(cut) {
		i++
	}
	sc.samples = slices.Delete(sc.samples, 0, i)
}

// average is the mean concurrency over the window ending at now.
func (sc *scaler) average(now time.Time, window time.Duration) float64 {
	cut := now.Add(-window)
	var sum float64
	n := 0
	for i := len(sc.samples) - 1; i >= 0 && sc.samples[i].at.After(cut); i-- {
		sum += sc.samples[i].c
		n++
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// plan is the rule book: the instance count for a service with scale that
// has ready healthy instances and currently wants current, from the
// windows as they stand at now.
func (sc *scaler) plan(now time.Time, scale spec.Scale, ready, current int) Plan {
	target := float64(scale.Concurrency)
	p := Plan{Stable: sc.average(now, sc.cfg.StableWindow), Panic: sc.average(now, sc.cfg.PanicWindow)}
	wantStable := int(math.Ceil(p.Stable / target))
	wantPanic := int(math.Ceil(p.Panic / target))
	readyN := float64(max(ready, 1))

	// Panic: the short window asks for twice the ready instances. It
	// lasts until a whole stable window passed without asking again.
	over := p.Panic/target >= panicThreshold*readyN
	switch {
	case over && sc.panicSince.IsZero():
		sc.panicSince, sc.maxPanic = now, current
	case over:
		sc.panicSince = now
	case !sc.panicSince.IsZero() && now.Sub(sc.panicSince) >= sc.cfg.StableWindow:
		sc.panicSince, sc.maxPanic = time.Time{}, 0
	}
	p.Panicking = !sc.panicSince.IsZero()

	// The stable window's wants over the last panic window: down only as
	// low as the highest of them.
	sc.wants = append(sc.wants, sample{at: now, c: float64(wantStable)})
	recent := 0
	for i := len(sc.wants) - 1; i >= 0; i-- {
		if now.Sub(sc.wants[i].at) >= sc.cfg.PanicWindow {
			sc.wants = slices.Delete(sc.wants, 0, i+1)
			break
		}
		recent = max(recent, int(sc.wants[i].c))
	}
	if p.Panicking {
		// Never down while panicking: the highest count since it began.
		p.N = max(wantPanic, sc.maxPanic, current)
		sc.maxPanic = p.N
	} else {
		p.N = wantStable
		if p.N < current {
			p.N = min(recent, current)
		}
	}
	// Zero only after a whole stable window without a request: short
	// requests between samples still need an instance.
	idle := now.Sub(sc.lastActive) >= sc.cfg.StableWindow
	if p.N == 0 && !idle {
		p.N = 1
	}
	p.N = min(max(p.N, scale.Min), scale.Max)
	if p.N < current && now.Sub(sc.since) < sc.cfg.StableWindow {
		p.N = current // not watched for a whole stable window yet
	}

	stableWin, panicWin := sc.cfg.StableWindow.String(), sc.cfg.PanicWindow.String()
	switch {
	case p.N > current && p.Panicking:
		p.Action = Up
		p.Why = fmt.Sprintf("scale up from %d to %d: panic (the %s average asked for ≥ %.0f× the %d ready instance(s)): %s average %.1f in flight / target %d per instance = %.2f",
			current, p.N, panicWin, panicThreshold, ready, panicWin, p.Panic, scale.Concurrency, p.Panic/target)
	case p.N > current:
		p.Action = Up
		p.Why = fmt.Sprintf("scale up from %d to %d: %s average %.1f in flight / target %d per instance = %.2f", current, p.N, stableWin, p.Stable, scale.Concurrency, p.Stable/target)
	case p.N < current && p.N == 0:
		p.Action = ToZero
		p.Why = fmt.Sprintf("scale to zero from %d: no request for %s (%s average %.2f in flight)", current, stableWin, stableWin, p.Stable)
	case p.N < current:
		p.Action = Down
		p.Why = fmt.Sprintf("scale down from %d to %d: %s average %.1f in flight / target %d per instance = %.2f (min %d)", current, p.N, stableWin, p.Stable, scale.Concurrency, p.Stable/target, scale.Min)
	default:
		p.Action = Hold
	}
	if p.N > current && p.N == scale.Max && (wantPanic > scale.Max || wantStable > scale.Max) {
		p.Why += fmt.Sprintf(" (capped at max %d)", scale.Max)
	}
	return p
}
