package rollout

// Host ownership. Every host name the edge serves belongs to one route, so
// one app can never take another's traffic:
//
//   - SERVICE.APP.DOMAIN (and SERVICE.APP.internal) are APP's addresses:
//     any name ending in .APP.DOMAIN is APP's alone, deployed or not yet.
//   - A domains: or edge: host belongs to the service or entrypoint that
//     holds it; a deploy of anything else that lists it is refused at
//     admission, naming the holder, before anything is built or started.
//
// Admission is atomic across concurrent deploys: a deploy reserves the
// hosts it claims in hostBook, under one lock, until it ends; by then they
// are in the edge and the store, where the next deploy's check finds them.
//
//	deploy ──▶ claimHosts (check + reserve) ──▶ build … switch, applyEdge ──▶ release reservation
//	                 │
//	                 └──▶ refused: "host x is already served by app a service b"

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/berth-dev/berth/internal/controlplane/fleet"
	"github.com/berth-dev/berth/internal/controlplane/traffic"
	"github.com/berth-dev/berth/internal/spec"
)

// holder is what holds a host: a service or an entrypoint of an app.
type holder struct {
	app, service, entrypoint string
}

func (h holder) String() string {
	if h.entrypoint != "" {
		return fmt.Sprintf("app %q entrypoint %q", h.app, h.entrypoint)
	}
	return fmt.Sprintf("app %q service %q", h.app, h.service)
}

// hostBook holds the hosts claimed by deploys in flight. mu also makes a
// deploy's check and reservation one step, so two deploys claiming one
// host cannot both pass.
type hostBook struct {
	mu      sync.Mutex
	next    int
	pending []reservation
}

type reservation struct {
	token  int
	host   string
	holder holder
}

// namespaceApp returns the app whose addresses h is under (it ends in
// .APP.DOMAIN or .APP.internal) and that suffix, or "".
func (m *Manager) namespaceApp(h string) (app, suffix string) {
	for _, base := range []string{m.cfg.Domain, strings.TrimPrefix(traffic.InternalSuffix, ".")} {
		if base == "" {
			continue
		}
		rest, ok := strings.CutSuffix(h, "."+base)
		if !ok {
			continue
		}
		if i := strings.LastIndexByte(rest, '.'); i >= 0 {
			return rest[i+1:], h[len(rest[:i]):]
		}
	}
	return "", ""
}

// heldHosts returns every host served now or reserved by a deploy in
// flight, with its holder: the live services' names and domains, the
// stored entrypoints' hosts. Call with the book's mu held.
func (m *Manager) heldHosts(ctx context.Context) (map[string]holder, error) {
	held := map[string]holder{}
	for _, s := range m.fleet.Services("") {
		for _, sv := range []*spec.Service{s.Serving().Spec, m.canarySpec(s)} {
			if sv != nil && sv.Port != 0 {
				// A canary's hosts are the service's at its promotion.
				for _, h := range m.fleet.Hosts(s.App(), sv) {
					held[h] = holder{app: s.App(), service: s.Name()}
				}
			}
		}
	}
	recs, err := m.store.ListEntrypoints(ctx, "")
	if err != nil {
		return nil, err
	}
	for _, rec := range recs {
		hosts, err := traffic.Hosts(rec)
		if err != nil {
			continue
		}
		for _, h := range hosts {
			held[h] = holder{app: rec.App, entrypoint: rec.Name}
		}
	}
	for _, r := range m.hosts.pending {
		held[r.host] = r.holder
	}
	return held, nil
}

// claimHosts checks that the hosts the deploy of services names (and the
// spec's entrypoints) would serve are free, and reserves them until the
// returned release is called (when the deploy ends). A host that is
// another app's address, or held by another service or entrypoint, is
// refused with the field and line that claim it.
func (m *Manager) claimHosts(ctx context.Context, sp *spec.Spec, names []string) (release func(), err error) {
	return m.reserveHosts(ctx, sp, names, true)
}

// claimRevisionHosts is claimHosts for a rollback to rev of service s: an
// earlier revision may list a domain that another app has taken since.
func (m *Manager) claimRevisionHosts(ctx context.Context, s *fleet.Service, rev fleet.Revision) (release func(), err error) {
	sp := &spec.Spec{App: s.App(), Services: map[string]*spec.Service{s.Name(): rev.Spec}, ServiceOrder: []string{s.Name()}}
	release, err = m.reserveHosts(ctx, sp, []string{s.Name()}, false)
	if err != nil {
		return nil, refuse(fmt.Errorf("revision %d of %s: %w; deploy a new revision instead", rev.Number, s.Name(), err))
	}
	return release, nil
}

// reserveHosts checks and reserves the hosts of the services names of sp
// and, withEdge (a deploy, which installs sp's entrypoints in place of the
// app's), of its entrypoints.
func (m *Manager) reserveHosts(ctx context.Context, sp *spec.Spec, names []string, withEdge bool) (release func(), err error) {
	b := &m.hosts
	b.mu.Lock()
	defer b.mu.Unlock()
	held, err := m.heldHosts(ctx)
	if err != nil {
		return nil, err
	}
	// What this deploy replaces holds nothing against it: the services it
	// deploys, and the app's entrypoints (a deploy installs the spec's).
	replaced := func(h holder) bool {
		return h.app == sp.App && ((withEdge && h.entrypoint != "") || slices.Contains(names, h.service))
	}
	// Every service's own address is its own, deployed now or not: a
	// domain of another service cannot be it.
	claims := map[string]holder{}
	for _, n := range sp.ServiceOrder {
		if svc := sp.Services[n]; svc.Port != 0 {
			claims[m.fleet.Hosts(sp.App, svc)[0]] = holder{app: sp.App, service: n}
		}
	}
	claim := func(field, h string, by holder) error {
		if app, suffix := m.namespaceApp(h); app != "" && app != sp.App {
			return refuse(sp.FieldError(field,
				"host %q is an address of app %q: names under %s belong to that app alone; pick a name outside them", h, app, suffix))
		}
		if o, ok := claims[h]; ok && o != by {
			return refuse(sp.FieldError(field, "host %q is also claimed by %s in this spec; a host belongs to one route", h, o))
		}
		if o, ok := held[h]; ok && o != by && !replaced(o) {
			return refuse(sp.FieldError(field, "host %q is already served by %s; remove it there first", h, o))
		}
		claims[h] = by
		return nil
	}
	for _, n := range names {
		svc := sp.Services[n]
		if svc.Port == 0 {
			continue
		}
		for i, h := range svc.Domains {
			if err := claim(fmt.Sprintf("services.%s.domains[%d]", n, i), h, holder{app: sp.App, service: n}); err != nil {
				return nil, err
			}
		}
	}
	for _, name := range sp.EdgeOrder {
		for i, h := range sp.Edge[name].Hosts {
			if err := claim(fmt.Sprintf("edge.%s.hosts[%d]", name, i), h, holder{app: sp.App, entrypoint: name}); err != nil {
				return nil, err
			}
		}
	}
	b.next++
	token := b.next
	for h, by := range claims {
		b.pending = append(b.pending, reservation{token: token, host: h, holder: by})
	}
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.pending = slices.DeleteFunc(b.pending, func(r reservation) bool { return r.token == token })
	}, nil
}

// canarySpec is the spec of the service's canary, if any.
func (m *Manager) canarySpec(s *fleet.Service) *spec.Service {
	c := m.canaryOf(s)
	if c == nil {
		return nil
	}
	return c.rev.Spec
}
