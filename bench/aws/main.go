// Command aws measures berth's verbs on an AWS environment the way a user
// runs them (`berth --env prod deploy`, in the CLI's own process, no berth
// server), against moto_server, the loopback registry standing in for ECR's
// and the test proxy with ECS simulated (internal/aws/awstest): tasks run,
// deployments complete and targets are healthy at once. So the times are
// berth's own plus moto's, never AWS's: on real AWS a deploy and a cold
// rollback also wait tens of seconds for Fargate to place tasks and for the
// ALB's health checks.
//
// Each round makes a new one-service app (the example image) and runs:
// deploy (the first: the app's resources made), deploy again, rollback
// (warm: a traffic switch), task run, deploy a third time and rollback
// --to 2 (cold: revision 2's tasks no longer run and are started first),
// destroy. For each verb it prints the median time over the rounds and
// the AWS API calls the proxy received, by service (the image push's
// requests to the registry are not AWS API calls and are not counted).
// Each verb's calls, in order, and the first round's output go to
// stderr. moto is set to answer a
// task's final state at once, as the simulation answers the rest.
//
//	go run ./bench/aws -n 3      # bench/aws.sh installs moto and the registry first
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/bench/internal/benchkit"
	"github.com/berth-dev/berth/internal/aws/awstest"
	"github.com/berth-dev/berth/internal/cli"
)

// image is the example app's image, built locally (nothing is pulled).
const image = "berth-bench/hello:1"

// step is one verb a round runs.
type step struct {
	name string   // the table's metric
	args []string // after "berth --env prod"
	want string   // in its output: it did what it says
}

var steps = []step{
	{"deploy, the first (makes the app's resources)", []string{"deploy"}, "revision 1 serves"},
	{"deploy, the next revision", []string{"deploy"}, "revision 2 serves"},
	{"rollback, warm (previous revision still running: a traffic switch)", []string{"rollback", "web"}, "all traffic on revision 1"},
	{"task run `/hello migrate` → exit code", []string{"task", "run", "--", "/hello", "migrate"}, "/hello migrate"},
	{"deploy, a third revision", []string{"deploy"}, "revision 3 serves"},
	{"rollback --to 2, cold (its tasks started first)", []string{"rollback", "web", "--to", "2"}, "starting 1 task(s) of revision 2"},
	{"destroy", []string{"destroy"}, "destroyed"},
}

func main() {
	n := flag.Int("n", 3, "rounds to measure (a new app each)")
	flag.Parse()
	t := &tb{}
	code := 0
	if err := run(t, *n); err != nil {
		fmt.Fprintln(os.Stderr, "bench/aws:", err)
		code = 1
	}
	t.cleanup()
	os.Exit(code)
}

func run(t *tb, n int) error {
	root, err := benchkit.RepoRoot()
	if err != nil {
		return err
	}
	if err := benchkit.BuildExample(root, image); err != nil {
		return err
	}
	moto := awstest.MotoEndpoint(t)
	p := awstest.StartProxy(t, moto, awstest.Registry(t))
	if err := useEndpoint(p.URL); err != nil { // before SimulateECS, whose own clients read it
		return err
	}
	awstest.SimulateECS(t, p)
	dir, err := os.MkdirTemp("", "berth-bench-aws-")
	if err != nil {
		return err
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chdir(dir); err != nil { // as a user runs berth in the app's directory
		return err
	}

	times := make([][]time.Duration, len(steps))
	calls := make([][]map[string]int, len(steps))
	for round := 1; round <= n; round++ {
		app := fmt.Sprintf("ba%d%d", os.Getpid()%100000, round)
		spec := fmt.Sprintf("app: %s\nenvironments:\n  prod:\n    engine: aws\nservices:\n  web:\n    image: %s\n    port: 8080\n    health: {path: /healthz, interval: 5s}\n", app, image)
		if err := os.WriteFile(filepath.Join(dir, "berth.yaml"), []byte(spec), 0o600); err != nil {
			return err
		}
		for i, s := range steps {
			before := len(p.Calls())
			var out, errb bytes.Buffer
			start := time.Now()
			code := cli.Main(append([]string{"--env", "prod"}, s.args...), strings.NewReader(""), &out, &errb)
			took := time.Since(start)
			ops := p.Calls()[before:]
			if code != 0 || !strings.Contains(out.String(), s.want) {
				return fmt.Errorf("round %d: berth --env prod %s: exit %d, want %q in the output: %s%s", round, strings.Join(s.args, " "), code, s.want, out.String(), errb.String())
			}
			times[i] = append(times[i], took)
			calls[i] = append(calls[i], byService(ops))
			fmt.Fprintf(os.Stderr, "round %d: berth --env prod %s: %s, %d AWS API calls: %s\n", round, strings.Join(s.args, " "), took.Round(time.Millisecond), len(ops), strings.Join(ops, " "))
			if round == 1 {
				fmt.Fprintf(os.Stderr, "%s", out.String())
			}
		}
	}

	fmt.Printf("| verb on AWS (one-service app, moto + simulated ECS, %d rounds) | median | AWS API calls | by service |\n|---|---|---|---|\n", n)
	for i, s := range steps {
		c := medianCalls(calls[i])
		fmt.Printf("| %s | %s | %d | %s |\n", s.name, benchkit.Median(times[i]), total(c), format(c))
	}
	return nil
}

// useEndpoint points the standard AWS configuration chain at the proxy,
// with test credentials and region, as awstest.UseEndpoint does for tests;
// BERTH_HOST names no daemon, so a verb that needed one would fail.
func useEndpoint(url string) error {
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL":            url,
		"AWS_ACCESS_KEY_ID":           "testing",
		"AWS_SECRET_ACCESS_KEY":       "testing",
		"AWS_SESSION_TOKEN":           "",
		"AWS_REGION":                  awstest.Region,
		"AWS_DEFAULT_REGION":          awstest.Region,
		"AWS_PROFILE":                 "",
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
		"AWS_EC2_METADATA_DISABLED":   "true",
		"BERTH_ENV":                   "",
		"BERTH_HOST":                  "unix:///nonexistent/berth.sock",
	} {
		if err := os.Setenv(k, v); err != nil {
			return err
		}
	}
	return nil
}

// byService counts operations ("ecs:RunTask") by service ("ecs").
func byService(ops []string) map[string]int {
	m := map[string]int{}
	for _, op := range ops {
		svc, _, _ := strings.Cut(op, ":")
		m[svc]++
	}
	return m
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// medianCalls is the round whose total is the median (counts differ
// between rounds only where the first round made the state table).
func medianCalls(rounds []map[string]int) map[string]int {
	s := slices.Clone(rounds)
	sort.SliceStable(s, func(i, j int) bool { return total(s[i]) < total(s[j]) })
	return s[(len(s)-1)/2]
}

// format lists a round's calls by service, most first: "dynamodb 12, ecs 5".
func format(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
