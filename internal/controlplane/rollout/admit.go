package rollout

// Admission: everything a deploy checks before it changes anything, so a
// deploy that cannot succeed is refused with the reason, and a refused one
// leaves no trace. The hosts it would serve are claimed last, atomically
// (hosts.go).

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/controlplane/apierr"
	"github.com/berth-dev/berth/internal/controlplane/fleet"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/spec"
)

// refuse makes err bad input whose message stands alone as the CLI's
// one-line reason (a spec's "FILE:LINE: FIELD: what is wrong", "web is
// paused: ..."), without ErrInvalid's words in front; it is apierr.ErrInvalid for
// errors.Is and the API's code.
func refuse(err error) error { return apierr.Refuse(err) }

// checkDeploy rejects a deploy before anything changes: unknown services,
// image overrides for unknown services, missing images, memory limits above
// the machine's. (Hosts are claimed later, atomically: claimHosts.)
func (m *Manager) checkDeploy(ctx context.Context, sp *spec.Spec, req api.DeployRequest) ([]string, error) {
	names := req.Services
	if len(names) == 0 {
		names = sp.ServiceOrder
	}
	for _, n := range names {
		if _, ok := sp.Services[n]; !ok {
			return nil, fmt.Errorf("%w: unknown service %q: %s defines %s", apierr.ErrNotFound, n, req.File, strings.Join(sp.ServiceOrder, ", "))
		}
	}
	for n := range req.Images {
		if _, ok := sp.Services[n]; !ok {
			return nil, fmt.Errorf("%w: --image names unknown service %q: %s defines %s", apierr.ErrNotFound, n, req.File, strings.Join(sp.ServiceOrder, ", "))
		}
	}
	// A missing image is bad input: refuse before anything is recorded.
	for _, n := range names {
		sv := sp.Services[n]
		ref, build := sv.Image, sv.Build != nil
		if o, ok := req.Images[n]; ok {
			ref, build = o, false
		}
		if !build {
			if _, err := m.pods.ImageID(ctx, ref); err != nil {
				return nil, fmt.Errorf("service %s: %w", n, err)
			}
		}
		// Sidecars' images, and platforms.
		if err := m.checkImages(ctx, sv, ref, build); err != nil {
			return nil, fmt.Errorf("service %s: %w", n, err)
		}
	}
	if err := m.checkMemory(ctx, sp, names); err != nil {
		return nil, err
	}
	if err := m.checkNetworkHeld(ctx, sp.App); err != nil {
		return nil, err
	}
	return names, nil
}

// checkImages refuses, before a deploy changes anything, a service whose
// image (ref, unless it is built) or a sidecar's image is missing or cannot
// run on this host for the service's platform.
func (m *Manager) checkImages(ctx context.Context, sv *spec.Service, ref string, build bool) error {
	pc, _ := m.pods.(runtime.PlatformChecker)
	if !build && pc != nil {
		if err := pc.CheckPlatform(ctx, ref, sv.Platform); err != nil {
			return err
		}
	}
	for _, name := range fleet.SidecarNames(sv) {
		sc := sv.Sidecars[name]
		if sc.Build != nil {
			continue
		}
		if _, err := m.pods.ImageID(ctx, sc.Image); err != nil {
			return fmt.Errorf("sidecar %s: %w", name, err)
		}
		if pc != nil {
			if err := pc.CheckPlatform(ctx, sc.Image, sv.Platform); err != nil {
				return fmt.Errorf("sidecar %s: %w", name, err)
			}
		}
	}
	return nil
}

// checkMemory refuses a memory limit above the machine's memory: the
// engine would take it, and the limit would mean nothing. The spec cannot
// know the machine, so the daemon checks, at the spec's line.
func (m *Manager) checkMemory(ctx context.Context, sp *spec.Spec, names []string) error {
	hm, ok := m.pods.(runtime.HostMemory)
	if !ok {
		return nil
	}
	var total int64
	check := func(field string, limit int64) error {
		if limit == 0 {
			return nil
		}
		if total == 0 {
			var err error
			if total, err = hm.MemTotal(ctx); err != nil || total <= 0 {
				m.log.Warn("the machine's memory is unknown; memory limits not checked against it", "err", err)
				total = -1
			}
		}
		if total > 0 && limit > total {
			return refuse(sp.FieldError(field, "%s is more than this machine's %s", spec.FormatSize(limit), spec.FormatSize(total)))
		}
		return nil
	}
	for _, n := range names {
		sv := sp.Services[n]
		if err := check("services."+n+".memory", sv.Memory); err != nil {
			return err
		}
		for _, sc := range fleet.SidecarNames(sv) {
			if err := check("services."+n+".sidecars."+sc+".memory", sv.Sidecars[sc].Memory); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkNetworkHeld refuses an app whose network another berth server on the
// engine holds, before the deploy records anything.
func (m *Manager) checkNetworkHeld(ctx context.Context, app string) error {
	c, ok := m.pods.(runtime.NetworkHeldChecker)
	if !ok {
		return nil
	}
	if err := c.NetworkHeld(ctx, fleet.NetworkName(app)); err != nil {
		if errors.Is(err, runtime.ErrNetworkHeld) {
			return fmt.Errorf("app %s belongs to another berth server: %w; deploy it with that server, or rename the app", app, err)
		}
		return err
	}
	return nil
}

// checkCanary refuses a canary deploy that cannot be one, before anything
// changes.
func (m *Manager) checkCanary(ss []*fleet.Service, percent float64) error {
	if percent == 0 {
		return nil
	}
	if math.IsNaN(percent) || percent < 0 || percent > 100 {
		return fmt.Errorf("%w: --canary %v: a percentage is above 0 and at most 100", apierr.ErrInvalid, percent)
	}
	for _, s := range ss {
		cur, paused := s.Serving(), s.Paused()
		rev, sp := cur.Number, cur.Spec
		switch {
		case rev == 0 || sp == nil:
			return fmt.Errorf("%w: --canary: %s has no serving revision to share traffic with; deploy it without --canary first", apierr.ErrInvalid, s.Name())
		case sp.Port == 0:
			return fmt.Errorf("%w: --canary: %s has no port, so it has no traffic to share; name the services to deploy as canaries", apierr.ErrInvalid, s.Name())
		case paused:
			return fmt.Errorf("%w: --canary: %s is paused; resume it first", apierr.ErrInvalid, s.Name())
		}
	}
	return nil
}

// refuseDuringCanary refuses to deploy a service whose canary still runs.
func (m *Manager) refuseDuringCanary(ss []*fleet.Service) error {
	for _, s := range ss {
		if c := m.canaryOf(s); c != nil {
			return fmt.Errorf("%w: revision %d of %s is a canary with %v%% of the traffic: promote it with \"berth deploy --promote %s\", or roll it back with \"berth rollback %s\"",
				apierr.ErrBusy, c.rev.Number, s.Name(), c.percent, s.Name(), s.Name())
		}
	}
	return nil
}

// checkPaused refuses to deploy a paused service: a deploy that switched
// it would report success while the edge answers 503 (paused), and
// silently resuming it would undo a pause someone chose. The caller holds
// the services busy, so no pause or resume runs in between.
func checkPaused(ss []*fleet.Service) error {
	for _, s := range ss {
		if s.Paused() {
			return refuse(fmt.Errorf("%s is paused: run `berth resume %s` first", s.Name(), s.Name()))
		}
	}
	return nil
}

// checkSecrets refuses a deploy whose services (or their sidecars) list a
// secret that was never set: the containers would start without the
// variable, and the app fail later, far from the cause.
func (m *Manager) checkSecrets(ctx context.Context, sp *spec.Spec, names []string) error {
	for _, n := range names {
		sv := sp.Services[n]
		have, err := m.store.SecretValues(ctx, sp.App, n)
		if err != nil {
			return err
		}
		field, missing := missingSecrets(sv, have)
		if len(missing) > 0 {
			return refuse(sp.FieldError(field, "%s", apierr.MissingSecrets(n, missing)))
		}
	}
	return nil
}

// missingSecrets returns the secrets the service and its sidecars list
// that have no value in have, and the field of the first one.
func missingSecrets(sv *spec.Service, have map[string]string) (field string, missing []string) {
	note := func(f, k string) {
		if _, ok := have[k]; ok || slices.Contains(missing, k) {
			return
		}
		if field == "" {
			field = f
		}
		missing = append(missing, k)
	}
	for i, k := range sv.Secrets {
		note(fmt.Sprintf("services.%s.secrets[%d]", sv.Name, i), k)
	}
	for _, name := range fleet.SidecarNames(sv) {
		for i, k := range sv.Sidecars[name].Secrets {
			note(fmt.Sprintf("services.%s.sidecars.%s.secrets[%d]", sv.Name, name, i), k)
		}
	}
	return field, missing
}
