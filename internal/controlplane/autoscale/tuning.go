package autoscale

import "time"

// Tuning tunes the autoscaler. Zero fields take the defaults.
type Tuning struct {
	// Tick is how often in-flight requests are sampled and decisions made
	// (default 250ms).
	Tick time.Duration
	// StableWindow is the average that scales down, and the idle time after
	// which a service with min 0 scales to zero (default 60s).
	StableWindow time.Duration
	// PanicWindow is the short average that scales up at once when it asks
	// for at least twice the ready instances (default 6s).
	PanicWindow time.Duration
	// ColdAfter is how long a scaled-in instance stays frozen (no CPU,
	// memory kept, thawed in milliseconds) before it is stopped (default
	// 15m). Negative: stop at once.
	ColdAfter time.Duration
}

// Autoscaler defaults, Knative's KPA windows.
const (
	DefaultTick         = 250 * time.Millisecond
	DefaultStableWindow = 60 * time.Second
	DefaultPanicWindow  = 6 * time.Second
	DefaultColdAfter    = 15 * time.Minute
)

// WithDefaults is t with its zero fields set to the defaults, and the panic
// window no longer than the stable one.
func (t Tuning) WithDefaults() Tuning {
	if t.Tick <= 0 {
		t.Tick = DefaultTick
	}
	if t.StableWindow <= 0 {
		t.StableWindow = DefaultStableWindow
	}
	if t.PanicWindow <= 0 {
		t.PanicWindow = DefaultPanicWindow
	}
	t.PanicWindow = min(t.PanicWindow, t.StableWindow)
	if t.ColdAfter == 0 {
		t.ColdAfter = DefaultColdAfter
	}
	return t
}
