package rollout

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/controlplane/apierr"
	"github.com/berth-dev/berth/internal/controlplane/fleet"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/spec"
)

// Deploy-time work for sidecars and platforms: their images are checked
// before anything changes, built with the service's platform, and pinned
// by ID in the revision like the service's own image.

// build builds an image, for platform when one is given.
func (m *Manager) build(ctx context.Context, dir, dockerfile, tag, platform string, args map[string]string, progress io.Writer) (string, error) {
	b, ok := m.pods.(runtime.Builder)
	if !ok {
		return "", fmt.Errorf("%w: this engine cannot build images; give the service an image instead of build:", apierr.ErrInvalid)
	}
	return b.Build(ctx, dir, dockerfile, tag, platform, args, progress)
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

// pinSidecars builds the sidecars that have a build context and returns
// the service's sidecars with every image pinned by ID, so a retagged image
// never changes a revision.
func (m *Manager) pinSidecars(ctx context.Context, s *fleet.Service, sp *spec.Service, num int, baseDir string, out Progress) (map[string]*spec.Sidecar, error) {
	if len(sp.Sidecars) == 0 {
		return nil, nil
	}
	pinned := make(map[string]*spec.Sidecar, len(sp.Sidecars))
	for _, name := range fleet.SidecarNames(sp) {
		sc := *sp.Sidecars[name]
		sc.Env = maps.Clone(sc.Env)
		sc.DependsOn = maps.Clone(sc.DependsOn)
		if sc.Build != nil {
			tag := fmt.Sprintf("berth/%s-%s-%s:%d", s.App(), s.Name(), name, num)
			dir := sc.Build.Context
			if !filepath.IsAbs(dir) {
				dir = filepath.Join(baseDir, dir)
			}
			if _, err := os.Stat(dir); err != nil {
				return nil, fmt.Errorf("%w: build context %s of sidecar %s not found on the server (berth builds on the daemon's machine)", apierr.ErrInvalid, dir, name)
			}
			out.phase(phaseBuild, "%s: building sidecar %s as %s from %s", s.Name(), name, tag, dir)
			w := &lineWriter{fn: func(line string) { out.log("build", line) }}
			id, err := m.build(ctx, dir, sc.Build.Dockerfile, tag, sp.Platform, sc.Build.Args, w)
			w.Flush()
			if err != nil {
				return nil, fmt.Errorf("build of sidecar %s failed: %w", name, err)
			}
			sc.Image, sc.Build = id, nil
		} else {
			id, err := m.pods.ImageID(ctx, sc.Image)
			if err != nil {
				return nil, fmt.Errorf("sidecar %s: %w", name, err)
			}
			sc.Image = id
		}
		pinned[name] = &sc
	}
	return pinned, nil
}
