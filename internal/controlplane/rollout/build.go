package rollout

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/berth-dev/berth/internal/controlplane/apierr"
	"github.com/berth-dev/berth/internal/controlplane/fleet"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/spec"
)

// The build phase of a deploy: the service's image and its sidecars' are
// built (with the service's platform) or looked up, and pinned by ID in
// the revision, so a retagged image never changes a revision. (Admission
// checked them before anything changed: checkImages.)

// resolveImage builds the service's image when it has a build context, as
// berth/APP-SERVICE:REVISION, and returns its reference and the ID the
// revision pins.
func (m *Manager) resolveImage(ctx context.Context, s *fleet.Service, sp *spec.Service, num int, baseDir string, out Progress) (ref, id string, err error) {
	if sp.Build == nil {
		id, err := m.pods.ImageID(ctx, sp.Image)
		return sp.Image, id, err
	}
	image := fmt.Sprintf("berth/%s-%s:%d", s.App(), s.Name(), num)
	dir := sp.Build.Context
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(baseDir, dir)
	}
	if _, err := os.Stat(dir); err != nil {
		return "", "", fmt.Errorf("%w: build context %s not found on the server (berth builds on the daemon's machine)", apierr.ErrInvalid, dir)
	}
	out.phase(phaseBuild, "%s: building %s from %s", s.Name(), image, dir)
	w := &lineWriter{fn: func(line string) { out.log("build", line) }}
	id, err = m.build(ctx, dir, sp.Build.Dockerfile, image, sp.Platform, sp.Build.Args, w)
	w.Flush()
	if err != nil {
		return "", "", fmt.Errorf("build failed: %w", err)
	}
	return image, id, nil
}

// build builds an image, for platform when one is given.
func (m *Manager) build(ctx context.Context, dir, dockerfile, tag, platform string, args map[string]string, progress io.Writer) (string, error) {
	b, ok := m.pods.(runtime.Builder)
	if !ok {
		return "", fmt.Errorf("%w: this engine cannot build images; give the service an image instead of build:", apierr.ErrInvalid)
	}
	return b.Build(ctx, dir, dockerfile, tag, platform, args, progress)
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

// lineWriter turns a byte stream into lines.
type lineWriter struct {
	fn  func(string)
	buf []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := slices.Index(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.fn(strings.TrimRight(string(w.buf[:i]), "\r"))
		w.buf = w.buf[i+1:]
	}
}

// Flush emits a last unterminated line.
func (w *lineWriter) Flush() {
	if len(w.buf) > 0 {
		w.fn(string(w.buf))
		w.buf = nil
	}
}
