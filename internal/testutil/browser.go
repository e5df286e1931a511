package testutil

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// RequireChromiumEnv, set to 1 (as .ci/run does), makes a test that needs
// a browser fail when Chromium is missing instead of skipping.
const RequireChromiumEnv = "BERTH_REQUIRE_CHROMIUM"

// chromiumNames are the binaries tried, in order (Debian's package is
// "chromium").
var chromiumNames = []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"}

// Browser starts a headless Chromium for the test and returns a context
// of a fresh tab, closed (with the browser) when the test ends. Without
// Chromium on this machine the test is skipped, or fails when
// BERTH_REQUIRE_CHROMIUM=1. Each call is a new browser: its own profile,
// cookies and tabs.
func Browser(tb testing.TB) context.Context {
	tb.Helper()
	path := ""
	for _, n := range chromiumNames {
		if p, err := exec.LookPath(n); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv(RequireChromiumEnv) == "1" {
			tb.Fatalf("no Chromium here (%s=1): install it with apt-get install chromium", RequireChromiumEnv)
		}
		tb.Skipf("no Chromium here: install it with apt-get install chromium (set %s=1 to fail instead)", RequireChromiumEnv)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox, // as root in CI; the pages are the test's own
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	)
	// Start the browser now, on the context without a timeout (the first
	// call's context is the browser's lifetime), so its start-up is not
	// counted in a step's timeout. A start that fails is tried again: on
	// a loaded CI machine Chromium's zygote has once died at start
	// ("write: Broken pipe") for two tests in a row, and passed after.
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		// A profile of its own each time: a browser that died may have
		// left its lock in the last one.
		actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(opts, chromedp.UserDataDir(tb.TempDir()))...)
		ctx, cancelTab := chromedp.NewContext(actx)
		if err = chromedp.Do(ctx); err == nil {
			tb.Cleanup(func() {
				cancelTab()
				cancelAlloc()
			})
			return ctx
		}
		cancelTab()
		cancelAlloc()
		tb.Logf("start Chromium %s, attempt %d: %v", path, attempt, err)
		time.Sleep(time.Duration(attempt) * 500 * time.Millisecond)
	}
	tb.Fatalf("start Chromium %s: %v", path, err)
	return nil
}
