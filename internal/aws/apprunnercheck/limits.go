package apprunnercheck

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// LimitID names one of App Runner's limits in Limits.
type LimitID string

// The limits Check cites.
const (
	LimitInstanceSizes  LimitID = "instance-sizes"
	LimitRequestTimeout LimitID = "request-timeout"
	LimitHTTPVersions   LimitID = "http-versions"
	LimitWebSockets     LimitID = "websockets"
	LimitOneContainer   LimitID = "one-container"
	LimitArchitecture   LimitID = "architecture"
	LimitExec           LimitID = "exec"
	LimitMinSize        LimitID = "min-size"
	LimitMaxSize        LimitID = "max-size"
	LimitMaxConcurrency LimitID = "max-concurrency"
	LimitOnePort        LimitID = "one-port"
	LimitWebOnly        LimitID = "web-only"
	LimitNoRouting      LimitID = "no-routing"
	LimitNoPrivateName  LimitID = "no-private-name"
	LimitVPCEgress      LimitID = "vpc-egress"
	LimitNoTasks        LimitID = "no-tasks"
	LimitStateless      LimitID = "stateless"
	LimitNoLBControls   LimitID = "no-lb-controls"
	LimitHealthCheck    LimitID = "health-check"
	LimitEnvironment    LimitID = "environment"
	LimitIdleCPU        LimitID = "idle-cpu"
)

// Limit is one thing App Runner cannot do, or one range it keeps to, with
// the AWS page that says so.
type Limit struct {
	ID LimitID `json:"id"`
	// Limit says what App Runner offers or lacks, in one sentence.
	Limit string `json:"limit"`
	// Source is the URL of the AWS documentation (or, where AWS documents
	// only what exists, the open request on App Runner's public roadmap)
	// the limit is read from.
	Source string `json:"source"`
}

// Limits is every limit Check cites, in the order docs/apprunner-limits.md
// lists them. Values were read from AWS's App Runner developer guide and
// API reference and from botocore's App Runner model (2020-05-15); App
// Runner takes no new customers since 30 April 2026 and AWS plans no new
// features for it, so the lacks are not expected to close.
var Limits = []Limit{
	{LimitInstanceSizes, "An instance is one of 0.25 vCPU with 0.5 or 1 GB, 0.5 vCPU with 1 GB, 1 vCPU with 2, 3 or 4 GB, 2 vCPU with 4 or 6 GB, 4 vCPU with 8, 10 or 12 GB; nothing larger.",
		"https://docs.aws.amazon.com/apprunner/latest/api/API_InstanceConfiguration.html"},
	{LimitRequestTimeout, "Every HTTP request ends after 120 seconds, reading the request body and writing the response included; it cannot be raised.",
		"https://docs.aws.amazon.com/apprunner/latest/dg/develop.html"},
	{LimitHTTPVersions, "Requests reach the container as HTTP/1.0 or HTTP/1.1 only: no end-to-end HTTP/2, no gRPC.",
		"https://docs.aws.amazon.com/apprunner/latest/dg/develop.html"},
	{LimitWebSockets, "No documented WebSocket support (roadmap request #13), and the 120-second request limit cuts any long-lived connection or stream anyway.",
		"https://github.com/aws/apprunner-roadmap/issues/13"},
	{LimitOneContainer, "A service runs one container image per instance: no sidecars, no init containers (roadmap request #71 is open).",
		"https://github.com/aws/apprunner-roadmap/issues/71"},
	{LimitArchitecture, "Instances are x86-64 (linux/amd64) only: no ARM64/Graviton images (roadmap request #98 is open).",
		"https://github.com/aws/apprunner-roadmap/issues/98"},
	{LimitExec, "No exec or shell into a running instance: the App Runner API has no such operation.",
		"https://docs.aws.amazon.com/apprunner/latest/api/API_Operations.html"},
	{LimitMinSize, "At least 1 and at most 25 provisioned instances (MinSize 1-25): no scale to zero; idle provisioned instances keep their memory (billed) without CPU, and PauseService stops a service entirely.",
		"https://docs.aws.amazon.com/apprunner/latest/api/API_CreateAutoScalingConfiguration.html"},
	{LimitMaxSize, "A service scales to MaxSize instances, 25 unless set otherwise; how far above 25 an account may go is a service quota berth cannot read without AWS.",
		"https://docs.aws.amazon.com/apprunner/latest/api/API_CreateAutoScalingConfiguration.html"},
	{LimitMaxConcurrency, "Concurrent requests per instance before App Runner scales out (MaxConcurrency): 1 to 200, default 100.",
		"https://docs.aws.amazon.com/apprunner/latest/api/API_CreateAutoScalingConfiguration.html"},
	{LimitOnePort, "One port per service (ImageConfiguration.Port, default 8080), served as HTTPS on 443 at the service's URL.",
		"https://docs.aws.amazon.com/apprunner/latest/api/API_ImageConfiguration.html"},
	{LimitWebOnly, "App Runner runs web applications that answer HTTP; a worker without a port is not a service it can run (roadmap request #96 is open).",
		"https://github.com/aws/apprunner-roadmap/issues/96"},
	{LimitNoRouting, "A service is one URL with no listener rules: it cannot send a path to another service, and another load balancer cannot forward to its instances.",
		"https://docs.aws.amazon.com/apprunner/latest/api/API_CreateService.html"},
	{LimitNoPrivateName, "Services are reached by their URL only: public, or private through a VPC interface endpoint; no name on the app's private network.",
		"https://docs.aws.amazon.com/apprunner/latest/dg/network-pl.html"},
	{LimitVPCEgress, "Outbound traffic reaches private addresses only through a VPC connector (subnets and security groups of one VPC); without one a service reaches public endpoints only.",
		"https://docs.aws.amazon.com/apprunner/latest/dg/network-vpc.html"},
	{LimitNoTasks, "No one-off or scheduled tasks: the API deploys, pauses and resumes services and runs nothing else; migrations run on an ECS cluster.",
		"https://docs.aws.amazon.com/apprunner/latest/api/API_Operations.html"},
	{LimitStateless, "Stateless apps only: no sticky sessions, no state kept between requests.",
		"https://docs.aws.amazon.com/apprunner/latest/dg/develop.html"},
	{LimitNoLBControls, "The load balancer has no settings: no slow start, no drain time, no per-instance cap or queue, no process limit.",
		"https://docs.aws.amazon.com/apprunner/latest/api/API_CreateService.html"},
	{LimitHealthCheck, "Health checks: TCP or HTTP, interval and timeout 1-20 s, healthy and unhealthy thresholds 1-20.",
		"https://docs.aws.amazon.com/apprunner/latest/api/API_HealthCheckConfiguration.html"},
	{LimitEnvironment, "Environment variable names and values up to 51,200 characters each; secrets are Secrets Manager or SSM Parameter Store ARNs up to 2,048 characters.",
		"https://docs.aws.amazon.com/apprunner/latest/api/API_ImageConfiguration.html"},
	{LimitIdleCPU, "CPU goes to (and is billed for) instances serving requests; the others are a provisioned reserve kept with their memory, so work outside a request (queues, timers) has no CPU to count on.",
		"https://docs.aws.amazon.com/apprunner/latest/dg/manage-autoscaling.html"},
}

// LimitOf returns the limit with id; it panics on an id Limits lacks, which
// is a bug in this package (a test checks every id Check cites).
func LimitOf(id LimitID) Limit {
	for _, l := range Limits {
		if l.ID == id {
			return l
		}
	}
	panic("apprunnercheck: no limit " + string(id))
}

// App Runner's numbers, as Check compares a spec with them.
const (
	// MaxRequestTimeout is how long App Runner lets a request run.
	MaxRequestTimeout = 120 * time.Second
	// MaxConcurrency bounds MaxConcurrency, berth's scale.concurrency.
	MaxConcurrency = 200
	// MaxMinSize bounds MinSize, berth's scale.min and instances.
	MaxMinSize = 25
	// DefaultMaxSize is MaxSize when none is set, and the most instances
	// Check assumes an account may run without a raised quota.
	DefaultMaxSize = 25
	// MaxEnvValue is the longest environment variable name or value.
	MaxEnvValue = 51200
)

// Health check ranges (HealthCheckConfiguration), whole seconds.
const (
	minHealthSeconds = 1
	maxHealthSeconds = 20
	minThreshold     = 1
	maxThreshold     = 20
)

// Size is an App Runner instance size.
type Size struct {
	// MilliCPU is the vCPU in thousandths: 250 is 0.25 vCPU.
	MilliCPU int `json:"milli_cpu"`
	// MemoryMiB is the memory in MiB; App Runner's "GB" is 1024 MiB.
	MemoryMiB int `json:"memory_mib"`
}

// Sizes are the instance sizes App Runner sells, smallest vCPU first, then
// smallest memory (InstanceConfiguration's Cpu and Memory values, paired as
// the App Runner CDK constructs document them:
// https://docs.aws.amazon.com/cdk/api/v2/docs/@aws-cdk_aws-apprunner-alpha.Memory.html).
var Sizes = []Size{
	{250, 512}, {250, 1024},
	{500, 1024},
	{1000, 2048}, {1000, 3072}, {1000, 4096},
	{2000, 4096}, {2000, 6144},
	{4000, 8192}, {4000, 10240}, {4000, 12288},
}

// String renders a size as the App Runner console does: "1 vCPU / 2 GB".
func (s Size) String() string {
	return strconv.FormatFloat(float64(s.MilliCPU)/1000, 'f', -1, 64) + " vCPU / " +
		strconv.FormatFloat(float64(s.MemoryMiB)/1024, 'f', -1, 64) + " GB"
}

// CPU is the size's vCPU as App Runner's API writes it ("0.25 vCPU").
func (s Size) CPU() string {
	return strconv.FormatFloat(float64(s.MilliCPU)/1000, 'f', -1, 64) + " vCPU"
}

// Memory is the size's memory as App Runner's API writes it ("0.5 GB").
func (s Size) Memory() string {
	return strconv.FormatFloat(float64(s.MemoryMiB)/1024, 'f', -1, 64) + " GB"
}

// Fit is the smallest App Runner size with at least cpu vCPUs and memory
// bytes (0: no need, App Runner's default of 1 vCPU / 2 GB is assumed for
// a service that names neither). exact reports whether it is what was asked
// (an unnamed value counts as matched). ok is false when no size is large
// enough.
func Fit(cpu float64, memory int64) (size Size, exact, ok bool) {
	if cpu == 0 && memory == 0 {
		return Size{1000, 2048}, true, true
	}
	wantMilli := int(math.Ceil(cpu*1000 - 1e-9))
	wantMiB := int((memory + (1<<20 - 1)) >> 20)
	for _, s := range Sizes {
		if s.MilliCPU >= wantMilli && s.MemoryMiB >= wantMiB {
			exact = (cpu == 0 || float64(s.MilliCPU) == cpu*1000) &&
				(memory == 0 || int64(s.MemoryMiB)<<20 == memory)
			return s, exact, true
		}
	}
	return Size{}, false, false
}

// largest is App Runner's largest size, for messages.
func largest() Size { return Sizes[len(Sizes)-1] }

// secs renders d as berth.yaml writes a duration: "120s".
func secs(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", int(d/time.Second))
	}
	return d.String()
}
