package main

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/berth-dev/berth/internal/aws/awstest"
)

// tb is the little of testing.TB that awstest's helpers use (Helper,
// Cleanup, Fatal, Skip), for a program: a fatal error or a skip (moto or
// the registry missing) ends it with exit 1 after the cleanups. Any other
// method is left to the nil embedded TB and would panic.
type tb struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
}

func (t *tb) Helper() {}

func (t *tb) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

// cleanup runs the cleanups, last first, and stops moto_server and the
// registry if awstest started them.
func (t *tb) cleanup() {
	t.mu.Lock()
	fs := t.cleanups
	t.cleanups = nil
	t.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
	awstest.Stop()
}

func (t *tb) Fatal(args ...any) { t.die(fmt.Sprint(args...)) }

func (t *tb) Fatalf(format string, args ...any) { t.die(fmt.Sprintf(format, args...)) }

func (t *tb) Skip(args ...any) { t.die(fmt.Sprint(args...)) }

func (t *tb) Skipf(format string, args ...any) { t.die(fmt.Sprintf(format, args...)) }

func (t *tb) Errorf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench/aws: %s\n", fmt.Sprintf(format, args...))
}

func (t *tb) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench/aws: %s\n", fmt.Sprintf(format, args...))
}

func (t *tb) die(msg string) {
	fmt.Fprintln(os.Stderr, "bench/aws:", msg)
	t.cleanup()
	os.Exit(1)
}
