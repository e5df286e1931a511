package controlplane_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/testutil"
)

func twoServices(app, image, apiVersion string) string {
	return fmt.Sprintf(`app: %s
services:
  web:
    image: %s
    port: 8080
    health: {path: /healthz}
  api:
    image: %s
    port: 8080
    health: {path: /healthz}
    env: {VERSION: %s}
`, app, image, image, apiVersion)
}

// TestServiceNetworking: services of one app reach each other by name and
// through the internal load balancer, across a redeploy with no failed
// request; another app reaches neither.
func TestServiceNetworking(t *testing.T) {
	t.Parallel()
	img := testutil.TestAppImage(t)
	shop := testutil.UniqueName(t, "shop")
	leaveNothing(t, shop)
	other := testutil.UniqueName(t, "other")
	leaveNothing(t, other)
	d := startDaemon(t, "")
	d.destroyOnCleanup(shop)
	d.destroyOnCleanup(other)
	d.mustDeploy(twoServices(shop, img, "v1"))
	d.mustDeploy(appSpec(other, img, ""))

	direct, internal := "http://api:8080/", fmt.Sprintf("http://api.%s.internal/", shop)
	for _, u := range []string{direct, internal} {
		got, err := d.fetch(shop, "web", u)
		require.NoError(t, err, u)
		assert.Equal(t, "200\nhello from v1\n", got, u)
	}
	eventually(t, 5*time.Second, "internal requests are counted", func() bool {
		st, err := d.client.Status(context.Background(), shop)
		require.NoError(t, err)
		for _, s := range st.Apps[0].Services {
			if s.Name == "api" {
				return s.Internal != nil && s.Internal.Requests >= 1 && s.Internal.URL == strings.TrimSuffix(internal, "/")
			}
		}
		return false
	})

	t.Run("internal requests have their own metrics", func(t *testing.T) {
		sock := strings.TrimPrefix(d.addrs.API, "unix://")
		c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
		res, err := c.Get("http://berth/metrics")
		require.NoError(t, err)
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		assert.Regexp(t, fmt.Sprintf(`berth_internal_requests_total\{app="%s",service="api"\} [1-9]`, shop), string(body))
	})

	t.Run("another app reaches neither", func(t *testing.T) {
		t.Parallel()
		cli := testutil.DockerClient(t)
		nw, err := cli.NetworkInspect(context.Background(), "berth-"+shop, network.InspectOptions{})
		require.NoError(t, err)
		var apiIP, gateway string
		for _, c := range nw.Containers {
			if strings.Contains(c.Name, "-api-") {
				apiIP = strings.Split(c.IPv4Address, "/")[0]
			}
		}
		gateway = nw.IPAM.Config[0].Gateway
		require.NotEmpty(t, apiIP)

		_, err = d.fetch(other, "web", direct)
		require.Error(t, err, "the name does not resolve in another app")
		_, err = d.fetch(other, "web", internal)
		require.Error(t, err, "nor does the internal name")
		_, err = d.fetch(other, "web", "http://"+apiIP+":8080/")
		require.Error(t, err, "and its address is not routed")
		got, err := d.fetch(other, "web", "http://"+gateway+"/")
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(got, "403\n"), "the internal load balancer serves its own app only: %q", got)
	})

	t.Run("across a redeploy of api", func(t *testing.T) {
		t.Parallel()
		var ok, failed atomic.Int64
		var mu sync.Mutex
		var errs []string
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for _, u := range []string{direct, internal, direct, internal} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					got, err := d.fetch(shop, "web", u)
					if err == nil && strings.HasPrefix(got, "200\nhello from v") {
						ok.Add(1)
					} else {
						failed.Add(1)
						mu.Lock()
						errs = append(errs, fmt.Sprintf("%s: %q %v", u, got, err))
						mu.Unlock()
					}
					time.Sleep(5 * time.Millisecond)
				}
			}()
		}
		time.Sleep(300 * time.Millisecond)
		_, _, err := d.deploy(twoServices(shop, img, "v2"), "api")
		require.NoError(t, err)
		time.Sleep(300 * time.Millisecond)
		close(stop)
		wg.Wait()
		assert.Zero(t, failed.Load(), "failed requests from web: %v", errs)
		assert.Positive(t, ok.Load())
		// The previous revision is kept for a rollback: the name reaches
		// the new revision only, never hangs.
		for range 10 {
			got, err := d.fetch(shop, "web", direct)
			require.NoError(t, err)
			assert.Equal(t, "200\nhello from v2\n", got)
			time.Sleep(100 * time.Millisecond)
		}
	})
}
