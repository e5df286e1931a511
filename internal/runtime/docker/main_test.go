package docker_test

import (
	"flag"
	"os"
	"strconv"
	"testing"
)

// dockerParallel is how many of this package's parallel tests run at once
// unless -parallel says otherwise: they wait on the Docker Engine, not on
// the test's CPU, so go test's default (GOMAXPROCS, 2 on a small CI
// machine) leaves the engine idle most of the time (the conformance suite
// runs its checks 8 at a time for the same reason).
const dockerParallel = 4

func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", strconv.Itoa(dockerParallel))
	}
	os.Exit(m.Run())
}
