package fake

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/berth-dev/berth/internal/runtime"
)

// Interface guards: the powers the fake claims.
var (
	_ runtime.PodEngine          = (*Engine)(nil)
	_ runtime.Suspender          = (*Engine)(nil)
	_ runtime.Deregisterer       = (*Engine)(nil)
	_ runtime.PodExecer          = (*Engine)(nil)
	_ runtime.PodAttacher        = (*Engine)(nil)
	_ runtime.HostMemory         = (*Engine)(nil)
	_ runtime.OwnerSetter        = (*Engine)(nil)
	_ runtime.NetworkHeldChecker = (*Engine)(nil)
)

// TestApp is the ref of the simulated test app image New registers: CMD
// ["/testapp"], PORT=8080, as testutil.TestAppImage builds it.
const TestApp = "berth-test/app:fake"

// DefaultMemTotal is the host memory MemTotal reports until SetMemTotal.
const DefaultMemTotal = 8 << 30

// Image is what the fake knows of an image: the one executable it holds
// (the test app) and its defaults.
type Image struct {
	// Cmd is the image's CMD; Cmd[0] is its only executable, which runs
	// as the test app.
	Cmd []string
	// Env is the image's ENV.
	Env map[string]string
}

// Engine is one owner's view of an in-memory world of pods, networks and
// images. It is safe for concurrent use.
type Engine struct {
	w *world

	mu    sync.Mutex
	owner runtime.Owner
}

// world is what every view of one fake engine shares.
type world struct {
	mu       sync.Mutex
	images   map[string]image
	pods     map[string]*pod   // by ID
	names    map[string]string // pod name → ID
	networks map[string]*network
	memTotal int64
	faults   map[string][]error
	subs     map[*subscriber]struct{}
	closed   bool
	done     chan struct{}  // closed by Close
	made     int            // pods made so far
	wg       sync.WaitGroup // every goroutine the world starts
}

type image struct {
	Image
	id string
}

// New returns an empty engine holding the TestApp image. Its owner is the
// zero Owner (it owns everything) until SetOwner. Close it when done.
func New() *Engine {
	w := &world{
		images:   map[string]image{},
		pods:     map[string]*pod{},
		names:    map[string]string{},
		networks: map[string]*network{},
		memTotal: DefaultMemTotal,
		faults:   map[string][]error{},
		subs:     map[*subscriber]struct{}{},
		done:     make(chan struct{}),
	}
	e := &Engine{w: w}
	e.AddImage(TestApp, Image{Cmd: []string{"/testapp"}, Env: map[string]string{"PORT": "8080"}})
	return e
}

// Peer returns another view of the same world acting for a new owner, as
// a second berth server sharing the engine.
func (e *Engine) Peer() *Engine {
	return &Engine{w: e.w, owner: runtime.Owner{ID: randomHex(8), Dir: "/fake/peer-" + randomHex(4)}}
}

// SetOwner makes the engine act for o: what it creates carries o's
// labels, and ListPods, Events and the networks' checks see only what o
// owns. Call it before the engine is used.
func (e *Engine) SetOwner(o runtime.Owner) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.owner = o
}

// Owner returns the owner the engine acts for.
func (e *Engine) Owner() runtime.Owner {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.owner
}

// withOwner returns labels plus the owner's, as a new map.
func (e *Engine) withOwner(labels map[string]string) map[string]string {
	out := maps.Clone(labels)
	if out == nil {
		out = map[string]string{}
	}
	if o := e.Owner(); o.ID != "" {
		maps.Copy(out, o.Labels())
	}
	return out
}

// Close kills every process of the world, closes its listeners, ends its
// subscriptions and waits for all its goroutines. Every view of the world
// is closed with it; later calls fail.
func (e *Engine) Close() error {
	w := e.w
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		w.wg.Wait()
		return nil
	}
	w.closed = true
	close(w.done)
	for _, p := range w.pods {
		w.removeLocked(p)
	}
	for s := range w.subs {
		s.end(nil)
	}
	w.mu.Unlock()
	w.wg.Wait()
	return nil
}

// errClosed is every call's answer once the engine is closed.
var errClosed = errors.New("fake engine closed")

// AddImage makes ref an image the engine can run (replacing one of that
// ref). Its ID is derived from ref and img.
func (e *Engine) AddImage(ref string, img Image) {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%q\x00%v", ref, img.Cmd, img.Env))
	img.Cmd = append([]string(nil), img.Cmd...)
	img.Env = maps.Clone(img.Env)
	e.w.mu.Lock()
	defer e.w.mu.Unlock()
	e.w.images[normalRef(ref)] = image{Image: img, id: "sha256:" + hex.EncodeToString(sum[:])}
}

// RemoveImage forgets ref: pods of it can no longer be created.
func (e *Engine) RemoveImage(ref string) {
	e.w.mu.Lock()
	defer e.w.mu.Unlock()
	delete(e.w.images, normalRef(ref))
}

// normalRef adds the tag "latest" to a ref without tag or digest.
func normalRef(ref string) string {
	if strings.Contains(ref, "@") {
		return ref
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref
	}
	return ref + ":latest"
}

// image finds an added image as Docker does: by its name (tag "latest"
// when it has none), by its ID ("sha256:" and the hex), or by a prefix of
// the ID's hex, with or without "sha256:", that only it has. The caller
// holds w.mu.
func (w *world) image(ref string) (image, bool) {
	if img, ok := w.images[normalRef(ref)]; ok {
		return img, true
	}
	prefix := strings.TrimPrefix(ref, "sha256:")
	if prefix == "" || strings.Trim(prefix, "0123456789abcdef") != "" {
		return image{}, false
	}
	var found []image
	for _, img := range w.images {
		if strings.HasPrefix(strings.TrimPrefix(img.id, "sha256:"), prefix) &&
			!slices.ContainsFunc(found, func(f image) bool { return f.id == img.id }) {
			found = append(found, img)
		}
	}
	if len(found) != 1 {
		return image{}, false
	}
	return found[0], true
}

// ImageID returns the ID of an added image (by name, ID or ID prefix, as
// Docker finds one), or ErrImageNotFound.
func (e *Engine) ImageID(ctx context.Context, ref string) (string, error) {
	if err := e.w.fail(opImageID); err != nil {
		return "", err
	}
	e.w.mu.Lock()
	defer e.w.mu.Unlock()
	img, ok := e.w.image(ref)
	if !ok {
		return "", fmt.Errorf("%w: %s (the fake engine has only the images added to it)", runtime.ErrImageNotFound, ref)
	}
	return img.id, nil
}

// MemTotal reports the host memory SetMemTotal set (DefaultMemTotal).
func (e *Engine) MemTotal(ctx context.Context) (int64, error) {
	if err := e.w.fail(opMemTotal); err != nil {
		return 0, err
	}
	e.w.mu.Lock()
	defer e.w.mu.Unlock()
	return e.w.memTotal, nil
}

// pod returns the pod of id (its ID or its name), or ErrNotFound. The
// caller holds w.mu.
func (w *world) pod(id string) (*pod, error) {
	if w.closed {
		return nil, errClosed
	}
	if p, ok := w.pods[id]; ok {
		return p, nil
	}
	if pid, ok := w.names[id]; ok {
		return w.pods[pid], nil
	}
	return nil, fmt.Errorf("%w: pod %s", runtime.ErrNotFound, id)
}

// ctxErr is ctx's cause, for the calls that wait.
func ctxErr(ctx context.Context) error { return context.Cause(ctx) }

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
