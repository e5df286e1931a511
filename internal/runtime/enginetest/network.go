package enginetest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/testutil"
)

// checkNetworks: EnsureNetwork is idempotent; RemoveNetwork of a missing
// network is nil.
func checkNetworks(c *env) {
	name := testutil.UniqueName(c.T, "net")
	labels := map[string]string{runtime.LabelApp: c.app}
	for i := range 2 {
		if err := c.e.EnsureNetwork(c.opCtx(), name, labels); err != nil {
			c.Fatalf("EnsureNetwork(%s) call %d = %v, want nil (it is idempotent)", name, i+1, err)
		}
	}
	for i := range 2 {
		if err := c.e.RemoveNetwork(c.opCtx(), name); err != nil {
			c.Errorf("RemoveNetwork(%s) call %d = %v, want nil (a missing network is not an error)", name, i+1, err)
		}
	}
	if err := c.e.RemoveNetwork(c.opCtx(), testutil.UniqueName(c.T, "never-made")); err != nil {
		c.Errorf("RemoveNetwork of a network never made = %v, want nil", err)
	}
}

// checkNetworkHeld: a network another owner holds is ErrNetworkHeld to
// EnsureNetwork (and NetworkHeld), and its RemoveNetwork leaves it; once
// its owner removed it, it is free.
func checkNetworkHeld(c *env) {
	peer := c.peer()
	name := testutil.UniqueName(c.T, "held")
	labels := map[string]string{runtime.LabelApp: c.app}
	if err := c.e.EnsureNetwork(c.opCtx(), name, labels); err != nil {
		c.Fatalf("EnsureNetwork = %v, want nil", err)
	}
	c.Cleanup(func() { _ = c.e.RemoveNetwork(c.ctx(time.Minute), name) })
	if err := peer.EnsureNetwork(c.opCtx(), name, labels); !errors.Is(err, runtime.ErrNetworkHeld) {
		c.Errorf("EnsureNetwork by another owner of a network held = %v, want an error wrapping runtime.ErrNetworkHeld", err)
	}
	if hc, ok := peer.(runtime.NetworkHeldChecker); ok {
		if err := hc.NetworkHeld(c.opCtx(), name); !errors.Is(err, runtime.ErrNetworkHeld) {
			c.Errorf("NetworkHeld by another owner = %v, want an error wrapping runtime.ErrNetworkHeld", err)
		}
	}
	if hc, ok := c.e.(runtime.NetworkHeldChecker); ok {
		if err := hc.NetworkHeld(c.opCtx(), name); err != nil {
			c.Errorf("NetworkHeld by the network's own owner = %v, want nil", err)
		}
	}
	if err := peer.RemoveNetwork(c.opCtx(), name); err != nil && !errors.Is(err, runtime.ErrNetworkHeld) {
		c.Errorf("RemoveNetwork by another owner = %v, want nil or ErrNetworkHeld", err)
	}
	if err := peer.EnsureNetwork(c.opCtx(), name, labels); !errors.Is(err, runtime.ErrNetworkHeld) {
		c.Errorf("after another owner's RemoveNetwork, its EnsureNetwork = %v, want ErrNetworkHeld still (the network is left to its owner)", err)
	}
	if err := c.e.RemoveNetwork(c.opCtx(), name); err != nil {
		c.Fatalf("RemoveNetwork by its owner = %v, want nil", err)
	}
	if err := peer.EnsureNetwork(c.opCtx(), name, labels); err != nil {
		c.Errorf("EnsureNetwork by another owner once the network was removed = %v, want nil", err)
	}
	if err := peer.RemoveNetwork(c.opCtx(), name); err != nil {
		c.Errorf("RemoveNetwork of its own network = %v, want nil", err)
	}
}

// fetch asks the app serving at addr to GET u from inside its pod, until
// it answers want (the app's "STATUS\nBODY") within the start time.
func (c *env) fetch(addr, u, want string) {
	c.Helper()
	deadline := time.Now().Add(c.h.startWithin())
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, got, err := get(ctx, addr, "/fetch?url="+url.QueryEscape(u))
		cancel()
		if err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			if err != nil {
				got = err.Error()
			}
			c.Fatalf("from inside the pod GET %s answered %q, want %q", u, strings.TrimSpace(got), want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkAliases: pods on one network reach each other by their aliases.
func checkAliases(c *env) {
	api := c.instance(map[string]string{"WHO": "api"})
	api.Aliases = []string{"api"}
	a := c.run(api)
	b := c.run(c.instance(nil))
	c.serves(a.Addr, "/healthz")
	c.fetch(b.Addr, fmt.Sprintf("http://api:%d/env/WHO", appPort), "200\napi")
}

// checkLocalhost: a pod's containers share its network identity: the main
// container reaches a sidecar on localhost.
func checkLocalhost(c *env) {
	spec := c.instance(nil)
	side := c.sidecar("side", false, "serve")
	side.Env["PORT"] = "9090"
	side.Env["WHO"] = "side"
	spec.Sidecars = []runtime.SidecarSpec{side}
	p := c.run(spec)
	c.serves(p.Addr, "/healthz")
	c.fetch(p.Addr, "http://localhost:9090/env/WHO", "200\nside")
}

// checkImageID: the app's image has a stable ID, by which (or a prefix of
// it) it is found and runs; an unknown ref is ErrImageNotFound (and is
// not pulled).
func checkImageID(c *env) {
	id, err := c.e.ImageID(c.opCtx(), c.h.App)
	if err != nil || id == "" {
		c.Errorf("ImageID(%s) = %q, %v, want the image's ID", c.h.App, id, err)
	}
	if again, err := c.e.ImageID(c.opCtx(), c.h.App); err != nil || again != id {
		c.Errorf("ImageID(%s) again = %q, %v, want %q", c.h.App, again, err, id)
	}
	missing := testutil.UniqueName(c.T, "missing") + ":never-built"
	if _, err := c.e.ImageID(c.opCtx(), missing); !errors.Is(err, runtime.ErrImageNotFound) {
		c.Errorf("ImageID(%s) = %v, want an error wrapping runtime.ErrImageNotFound", missing, err)
	}
	// An image is found by its ID too, or a prefix of it, as Docker finds
	// one (a revision records the ID its image had), and runs from it.
	if !strings.HasPrefix(id, "sha256:") || len(id) < len("sha256:")+12 {
		return
	}
	short := strings.TrimPrefix(id, "sha256:")[:12]
	for _, ref := range []string{id, short} {
		if got, err := c.e.ImageID(c.opCtx(), ref); err != nil || got != id {
			c.Errorf("ImageID(%s) = %q, %v, want %q", ref, got, err, id)
		}
	}
	spec := c.task("echo", "by", "id")
	spec.Main.Image = id
	p := c.run(spec)
	if code, err := c.e.WaitPod(c.opCtx(), p.ID); err != nil || code != 0 {
		c.Errorf("a pod of image %s exited %d, %v; want 0", id, code, err)
	}
}
