package testutil

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
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
	// counted in a step's timeout. A start that fails is tried again,
	// later each time: on a loaded CI machine Chromium has died at start
	// (its zygote's "write: Broken pipe", crashpad snapshotting the crash)
	// for two tests in a row, six starts within five seconds. The last
	// tries go without the zygote, one less process to fork at start, and
	// each failure logs the machine's state beside Chromium's output.
	var err error
	const attempts = 5
	for attempt := 1; attempt <= attempts; attempt++ {
		// A profile of its own each time: a browser that died may have
		// left its lock in the last one.
		o := append(slices.Clip(opts), chromedp.UserDataDir(tb.TempDir()))
		if attempt > 3 {
			o = append(o, chromedp.Flag("no-zygote", true))
		}
		actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), o...)
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
		tb.Logf("start Chromium %s, attempt %d of %d (%s): %v", path, attempt, attempts, machineState(), err)
		if attempt < attempts {
			time.Sleep(time.Duration(1<<(attempt-1)) * time.Second) // 1, 2, 4, 8 s
		}
	}
	tb.Fatalf("start Chromium %s: %v", path, err)
	return nil
}

// machineState is what a failed browser start is logged with: the load,
// the tasks (processes and threads, bounded by the kernel's pid_max) and
// the memory available.
func machineState() string {
	load, _ := os.ReadFile("/proc/loadavg")
	tasks := 0
	if procs, err := os.ReadDir("/proc"); err == nil {
		for _, p := range procs {
			if p.Name()[0] >= '0' && p.Name()[0] <= '9' {
				if ts, err := os.ReadDir("/proc/" + p.Name() + "/task"); err == nil {
					tasks += len(ts)
				}
			}
		}
	}
	pidMax, _ := os.ReadFile("/proc/sys/kernel/pid_max")
	avail := ""
	if mem, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(mem), "\n") {
			if strings.HasPrefix(l, "MemAvailable:") {
				avail = strings.Join(strings.Fields(l)[1:], " ")
			}
		}
	}
	fields := strings.Fields(string(load))
	if len(fields) > 3 {
		fields = fields[:3]
	}
	return fmt.Sprintf("load %s, %d tasks of pid_max %s, memory available %s", strings.Join(fields, " "), tasks, strings.TrimSpace(string(pidMax)), avail)
}
