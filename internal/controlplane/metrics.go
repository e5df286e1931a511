package controlplane

import (
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the control plane's Prometheus metrics, next to the edge's
// (edge.Metrics) on the daemon's registry. Counters count from the daemon's
// start; gauges are read from the live state at scrape time, so the request
// path and the reconciler pay nothing for them.
type metrics struct {
	deploys    *prometheus.CounterVec
	events     *prometheus.CounterVec
	decisions  *prometheus.CounterVec
	tasks      *prometheus.CounterVec
	instances  *prometheus.Desc
	desired    *prometheus.Desc
	autoWant   *prometheus.Desc
	autoReady  *prometheus.Desc
	autoTarget *prometheus.Desc
	autoConc   *prometheus.Desc
	autoPanic  *prometheus.Desc
}

func newMetrics() *metrics {
	return &metrics{
		deploys: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "berth", Name: "deploys_total",
			Help: "Deploys and rollbacks by outcome: succeeded, failed, rolled_back (a rollback that succeeded), rollback_failed.",
		}, []string{"app", "service", "outcome"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "berth", Name: "events_total",
			Help: "Events recorded (berth events), by kind: deploy, crash, autoscale, task, exec, ...",
		}, []string{"app", "kind"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "berth", Subsystem: "autoscaler", Name: "decisions_total",
			Help: "Changes of a service's instance count by the autoscaler: up, down, zero (scaled to zero), wake (woken from zero by a request).",
		}, []string{"app", "service", "direction"}),
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "berth", Name: "tasks_total",
			Help: "Finished one-off, scheduled and release tasks, by outcome.",
		}, []string{"app", "service", "outcome"}),
		instances: prometheus.NewDesc("berth_instances",
			"Instances of a service by state: starting, healthy, unhealthy, draining, and the parked ones (scale to zero, scale in): frozen, parked-stopped.",
			[]string{"app", "service", "state"}, nil),
		desired: prometheus.NewDesc("berth_desired_instances",
			"Instances a service should run (its spec, berth scale, or the autoscaler).", []string{"app", "service"}, nil),
		autoWant: prometheus.NewDesc("berth_autoscaler_desired_instances",
			"Instances the autoscaler wants for a service with scale:.", []string{"app", "service"}, nil),
		autoReady: prometheus.NewDesc("berth_autoscaler_ready_instances",
			"Healthy instances serving a service with scale:.", []string{"app", "service"}, nil),
		autoTarget: prometheus.NewDesc("berth_autoscaler_target_concurrency",
			"The target in-flight requests per instance (scale.concurrency).", []string{"app", "service"}, nil),
		autoConc: prometheus.NewDesc("berth_autoscaler_observed_concurrency",
			"In-flight (and held) requests averaged over the stable or the panic window.", []string{"app", "service", "window"}, nil),
		autoPanic: prometheus.NewDesc("berth_autoscaler_panic",
			"1 while the autoscaler is in panic mode (scales up at once, never down).", []string{"app", "service"}, nil),
	}
}

// event counts a recorded event; deploy outcomes are told by its kind.
func (m *metrics) event(app, svc, kind string) {
	if m == nil {
		return
	}
	m.events.WithLabelValues(app, kind).Inc()
	outcome := map[string]string{
		"deploy": "succeeded", "deploy-failed": "failed",
		"rollback": "rolled_back", "rollback-failed": "rollback_failed",
	}[kind]
	if outcome != "" {
		m.deploys.WithLabelValues(app, svc, outcome).Inc()
	}
}

// countAutoscale counts an autoscaler decision taking a service from one
// count to another.
func (d *Daemon) countAutoscale(app, svc string, from, to int) {
	if d.metrics == nil {
		return
	}
	dir := "up"
	switch {
	case from == 0 && to > 0:
		dir = "wake"
	case to == 0:
		dir = "zero"
	case to < from:
		dir = "down"
	}
	d.metrics.decisions.WithLabelValues(app, svc, dir).Inc()
}

// countTask counts a finished task; outcome is a short word such as
// "succeeded", "failed", "stopped", "timed_out".
func (d *Daemon) countTask(app, svc, outcome string) {
	if d.metrics != nil {
		d.metrics.tasks.WithLabelValues(app, svc, strings.ReplaceAll(outcome, " ", "_")).Inc()
	}
}

// registerMetrics adds the control plane's metrics to reg.
func (d *Daemon) registerMetrics(reg prometheus.Registerer) error {
	m := d.metrics
	for _, c := range []prometheus.Collector{m.deploys, m.events, m.decisions, m.tasks, stateCollector{d}, d.internal} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register control plane metrics: %w", err)
		}
	}
	return nil
}

// stateCollector reads instance counts and the autoscaler's view at
// scrape time.
type stateCollector struct{ d *Daemon }

var _ prometheus.Collector = stateCollector{}

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	m := c.d.metrics
	for _, desc := range []*prometheus.Desc{m.instances, m.desired, m.autoWant, m.autoReady, m.autoTarget, m.autoConc, m.autoPanic} {
		ch <- desc
	}
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.d.metrics
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	for _, g := range c.d.fleet.Gauges() {
		for _, st := range []string{"starting", "healthy", "unhealthy", "draining", "frozen", "parked-stopped"} {
			gauge(m.instances, float64(g.ByState[st]), g.App, g.Service, st)
		}
		gauge(m.desired, float64(g.Desired), g.App, g.Service)
		sc := g.Scale
		if sc == nil {
			continue
		}
		gauge(m.autoWant, float64(g.Desired), g.App, g.Service)
		gauge(m.autoReady, float64(g.Ready), g.App, g.Service)
		gauge(m.autoTarget, float64(sc.Concurrency), g.App, g.Service)
		gauge(m.autoConc, g.Stable, g.App, g.Service, "stable")
		gauge(m.autoConc, g.Panic, g.App, g.Service, "panic")
		panicking := 0.0
		if g.Panicking {
			panicking = 1
		}
		gauge(m.autoPanic, panicking, g.App, g.Service)
	}
}
