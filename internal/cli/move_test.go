package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/apprunner"
	artypes "github.com/aws/aws-sdk-go-v2/service/apprunner/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/aws/awstest"
	"github.com/berth-dev/berth/internal/aws/clients"
	"github.com/berth-dev/berth/internal/testutil"
)

// The founding decision carried out as a user does it: an App Runner
// service behind a CloudFront entrypoint (origin: its URL) is imported,
// deployed, a migration runs on the cluster, berth check names the
// constraint that forces Fargate, and berth move takes it to Fargate behind
// the same distribution (default origin switched to the load balancer, App
// Runner paused, berth.yaml rewritten), with no Route 53 call. A guard trip
// switches back by itself; berth move --to apprunner reverses the move.
func TestMoveAppRunnerToFargate(t *testing.T) {
	ctx := context.Background()
	p := awstest.UseProxy(t)
	sim := awstest.SimulateECS(t, p)
	fake := awstest.SimulateAppRunner(t, p)
	fake.SetPolls(0)
	awstest.FakeCloudFront(t, p)
	metrics := awstest.FakeCloudWatch(t, p)
	t.Setenv("BERTH_HOST", "unix:///nonexistent/berth.sock")
	cl, err := clients.Load(ctx, "")
	require.NoError(t, err)

	const imageA = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop-web@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	created, err := cl.AppRunner.CreateService(ctx, &sdk.CreateServiceInput{
		ServiceName: aws.String(testutil.UniqueName(t, "mv")),
		SourceConfiguration: &artypes.SourceConfiguration{
			ImageRepository: &artypes.ImageRepository{
				ImageIdentifier: aws.String(imageA), ImageRepositoryType: artypes.ImageRepositoryTypeEcr,
				ImageConfiguration: &artypes.ImageConfiguration{Port: aws.String("8080")},
			},
			AuthenticationConfiguration: &artypes.AuthenticationConfiguration{AccessRoleArn: aws.String("arn:aws:iam::123456789012:role/AppRunnerECRAccess")},
		},
		HealthCheckConfiguration: &artypes.HealthCheckConfiguration{Protocol: artypes.HealthCheckProtocolHttp, Path: aws.String("/health"), Interval: aws.Int32(5)},
	})
	require.NoError(t, err)
	arn := aws.ToString(created.Service.ServiceArn)
	_, err = cl.AppRunner.DescribeService(ctx, &sdk.DescribeServiceInput{ServiceArn: aws.String(arn)})
	require.NoError(t, err)

	local := testutil.TestAppImage(t)
	app := testutil.UniqueName(t, "m")
	file := writeSpec(t, "# the shop\napp: "+app+"\nenvironments:\n  prod:\n    engine: aws\n")
	t.Chdir(filepath.Dir(file))
	run := func(args ...string) result {
		t.Helper()
		return berth(t, append([]string{"--env", "prod"}, args...)...)
	}
	edit := func(from, to string) {
		t.Helper()
		b, err := os.ReadFile(file)
		require.NoError(t, err)
		require.Contains(t, string(b), from)
		require.NoError(t, os.WriteFile(file, []byte(strings.Replace(string(b), from, to, 1)), 0o644))
	}
	appRunnerState := func() artypes.ServiceStatus {
		t.Helper()
		d, err := cl.AppRunner.DescribeService(ctx, &sdk.DescribeServiceInput{ServiceArn: aws.String(arn)})
		require.NoError(t, err)
		return d.Service.Status
	}

	// Import, then the entrypoint in front of App Runner's URL.
	r := run("import", "apprunner", arn, "--name", "web")
	require.Equal(t, 0, r.code, r.stderr)
	d, err := cl.AppRunner.DescribeService(ctx, &sdk.DescribeServiceInput{ServiceArn: aws.String(arn)})
	require.NoError(t, err)
	url := "https://" + aws.ToString(d.Service.ServiceUrl)
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file, append(b, fmt.Sprintf(`edge:
  www:
    hosts: [www.%s.example.com]
    origin: %s  # App Runner, for now
tasks:
  migrate:
    service: web
    command: [/srv, migrate]
`, app, url)...), 0o644))
	r = run("deploy", "--image", "web="+local)
	t.Logf("berth deploy --env prod:\n%s", r.stdout)
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	assert.Contains(t, r.stdout, "entrypoint www: distribution")
	id := distributionOf(t, cl, app)
	assert.Equal(t, "berth-"+aws.ToString(d.Service.ServiceUrl), defaultOrigin(t, cl, id))

	// The migration on the cluster.
	sim.OnRun(func(cmd []string) (int, []string) { return 0, []string{"migrated: " + strings.Join(cmd, " ")} })
	r = run("task", "run", "migrate")
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	assert.Contains(t, r.stdout, "migrated: /srv migrate")

	// The constraint that forces the move: a sidecar.
	edit("    port: 8080\n", "    port: 8080\n    sidecars:\n      log: {image: "+local+"}\n")
	r = run("check")
	assert.Equal(t, 1, r.code, r.stdout+r.stderr)
	assert.Contains(t, r.stdout, "services.web.sidecars")

	// App Runner has no exec: refused, with the way out.
	r = run("exec", "web", "--", "true")
	assert.Equal(t, 1, r.code, r.stdout+r.stderr)
	assert.Contains(t, r.stderr, "App Runner")

	if r := run("move", "web", "--delete-apprunner"); r.code != 1 || !strings.Contains(r.stderr, "runs on App Runner") {
		t.Fatalf("--delete-apprunner while it runs there: %d %q", r.code, r.stderr)
	}

	// What Fargate cannot run as App Runner did is refused before anything.
	r = run("move", "web", "--to", "fargate", "--image", "web="+local)
	if r.code != 1 || !strings.Contains(r.stderr, "services.web.health.healthy") {
		t.Fatalf("move with App Runner's health threshold: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	edit("healthy: 1,", "healthy: 2,")

	// A guard trip: the targets fail their health checks once CloudFront
	// sends to them; berth switches back, App Runner keeps serving.
	var switched, sick atomic.Bool
	sick.Store(true)
	p.Intercept(func(c *awstest.Call) *awstest.Response {
		switch {
		case c.Service == "cloudfront" && c.Request.Method == http.MethodPut && strings.HasSuffix(c.Request.URL.Path, "/config"): // UpdateDistribution
			switched.Store(strings.Contains(string(c.Body), "<TargetOriginId>berth-web</TargetOriginId>"))
		case c.Op() == "elasticloadbalancing:DescribeTargetHealth":
			if switched.Load() && sick.Load() {
				return unhealthyTargets()
			}
		}
		return nil
	})
	// tripped moves to Fargate and checks that its guard switched back:
	// the entrypoint on App Runner, which keeps running.
	tripped := func(what string) result {
		t.Helper()
		r := run("move", "web", "--to", "fargate", "--image", "web="+local, "--guard", "1s")
		t.Logf("berth move (%s):\n%s%s", what, r.stdout, r.stderr)
		require.Equal(t, 1, r.code, r.stdout+r.stderr)
		assert.Contains(t, r.stderr, "switched back by its guard")
		assert.Contains(t, r.stdout, "back on App Runner")
		assert.Equal(t, "berth-"+aws.ToString(d.Service.ServiceUrl), defaultOrigin(t, cl, id))
		assert.Equal(t, artypes.ServiceStatusRunning, appRunnerState())
		return r
	}
	tripped("guard trip on health")
	b, _ = os.ReadFile(file)
	assert.Contains(t, string(b), "apprunner: "+arn)
	st := moveStatus(t, run)
	assert.Equal(t, "running", st.State)
	assert.Contains(t, st.Message, "App Runner")

	// A guard trip on answers: the targets are healthy, but CloudWatch
	// counts 5XX in 30 % of the requests the load balancer sent them
	// since the switch; berth switches back.
	sick.Store(false)
	var fivexx atomic.Bool
	fivexx.Store(true)
	p.Intercept(func(c *awstest.Call) *awstest.Response {
		if c.Service == "cloudfront" && c.Request.Method == http.MethodPut && strings.HasSuffix(c.Request.URL.Path, "/config") &&
			strings.Contains(string(c.Body), "<TargetOriginId>berth-web</TargetOriginId>") && fivexx.Load() {
			lbs, err := cl.ELB.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{Names: []string{"berth-" + app + "-prod"}})
			require.NoError(t, err)
			_, lb, _ := strings.Cut(aws.ToString(lbs.LoadBalancers[0].LoadBalancerArn), ":loadbalancer/")
			tgs, err := cl.ELB.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{LoadBalancerArn: lbs.LoadBalancers[0].LoadBalancerArn})
			require.NoError(t, err)
			for _, tg := range tgs.TargetGroups {
				_, id, _ := strings.Cut(aws.ToString(tg.TargetGroupArn), ":targetgroup/")
				dims := map[string]string{"LoadBalancer": lb, "TargetGroup": "targetgroup/" + id}
				metrics.Add("AWS/ApplicationELB", "RequestCount", dims, 200)
				metrics.Add("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", dims, 60)
			}
		}
		return nil
	})
	r = tripped("guard trip on 5XX")
	assert.Contains(t, r.stderr, "60 of 200 requests")
	assert.Contains(t, r.stderr, "answered 5XX")
	fivexx.Store(false)
	p.Intercept(nil)

	// The move: the requests since this switch are fine (the 5XX counted
	// above were before it).
	r = run("move", "web", "--to", "fargate", "--image", "web="+local, "--guard", "1s")
	t.Logf("berth move --env prod web --to fargate:\n%s%s", r.stdout, r.stderr)
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	assert.Equal(t, "berth-web", defaultOrigin(t, cl, id))
	assert.Equal(t, artypes.ServiceStatusPaused, appRunnerState())
	b, err = os.ReadFile(file)
	require.NoError(t, err)
	assert.NotContains(t, string(b), "apprunner:")
	assert.Contains(t, string(b), "origin: web")
	assert.Contains(t, string(b), "# the shop")
	assert.Contains(t, r.stdout, "removed apprunner: "+arn)
	st = moveStatus(t, run)
	assert.NotContains(t, st.Message, "App Runner")
	lbs, err := cl.ELB.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{Names: []string{"berth-" + app + "-prod"}})
	require.NoError(t, err)
	dc, err := cl.CloudFront.GetDistributionConfig(ctx, &cloudfront.GetDistributionConfigInput{Id: aws.String(id)})
	require.NoError(t, err)
	for _, o := range dc.DistributionConfig.Origins.Items {
		if aws.ToString(o.Id) == "berth-web" {
			assert.Equal(t, aws.ToString(lbs.LoadBalancers[0].DNSName), aws.ToString(o.DomainName))
		}
	}
	// On Fargate, exec runs in the service's container through berth's own
	// Session Manager channel (the fake agent: moto has no
	// ExecuteCommand); stdin goes in, output and exit code come back.
	agent := awstest.StartSSMAgent(t)
	p.Handle("ecs:ExecuteCommand", agent.ExecuteCommand)
	// moto lists no task of an ECS service: the service's one task is
	// answered here, as ECS lists and describes it.
	task := "arn:aws:ecs:" + awstest.Region + ":123456789012:task/berth/0a1b2c3d4e5f4a5b8c9d0e1f2a3b4c5d"
	p.Intercept(func(c *awstest.Call) *awstest.Response {
		var in struct {
			ServiceName string
			Tasks       []string
		}
		_ = json.Unmarshal(c.Body, &in)
		var answer map[string]any
		switch {
		case c.Op() == "ecs:ListTasks" && strings.Contains(in.ServiceName, "-web-"):
			answer = map[string]any{"taskArns": []string{task}}
		case c.Op() == "ecs:DescribeTasks" && slices.Equal(in.Tasks, []string{task}):
			answer = map[string]any{"failures": []any{}, "tasks": []any{map[string]any{"taskArn": task, "lastStatus": "RUNNING", "desiredStatus": "RUNNING",
				"enableExecuteCommand": true, "startedAt": float64(time.Now().Add(-time.Minute).Unix())}}}
		default:
			return nil
		}
		r := &awstest.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/x-amz-json-1.1"}}}
		require.NoError(t, r.SetJSON(answer))
		return r
	})
	var stdout, stderr bytes.Buffer
	code := Main([]string{"--env", "prod", "exec", "web", "-i", "--", "sh", "-c", "cat; exit 3"}, strings.NewReader("hello from stdin\n"), &stdout, &stderr)
	assert.Equal(t, 3, code, stderr.String())
	assert.Equal(t, "hello from stdin\n", stdout.String())
	require.NotEmpty(t, agent.Sessions())
	assert.Equal(t, "web", agent.Sessions()[0].Container)
	assert.Equal(t, task, agent.Sessions()[0].Task)
	p.Intercept(nil)

	// A rollback right after the move does not cross back to App Runner
	// behind the entrypoint's back: it says how to.
	r = run("rollback", "web")
	t.Logf("berth rollback right after the move:\n%s%s", r.stdout, r.stderr)
	assert.Equal(t, 1, r.code, r.stdout+r.stderr)
	assert.Contains(t, r.stderr, "berth move --env prod web --to apprunner")
	assert.Equal(t, "berth-web", defaultOrigin(t, cl, id))

	// A later deploy goes to Fargate and keeps the entrypoint on it; its
	// rollback returns to the move's revision, on Fargate.
	r = run("deploy", "--image", "web="+local)
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	assert.NotContains(t, r.stdout, "UPDATE SERVICE")
	assert.Equal(t, "berth-web", defaultOrigin(t, cl, id))
	r = run("rollback", "web")
	t.Logf("berth rollback after a deploy on Fargate:\n%s%s", r.stdout, r.stderr)
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	assert.Equal(t, "berth-web", defaultOrigin(t, cl, id))
	assert.Equal(t, artypes.ServiceStatusPaused, appRunnerState())
	st = moveStatus(t, run)
	assert.Equal(t, "running", st.State)
	assert.NotContains(t, st.Message, "App Runner")

	// The way back.
	r = run("move", "web", "--to", "apprunner", "--guard", "1s")
	t.Logf("berth move --env prod web --to apprunner:\n%s%s", r.stdout, r.stderr)
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	assert.Equal(t, "berth-"+aws.ToString(d.Service.ServiceUrl), defaultOrigin(t, cl, id))
	assert.Equal(t, artypes.ServiceStatusRunning, appRunnerState())
	b, _ = os.ReadFile(file)
	assert.Contains(t, string(b), "apprunner: "+arn)
	assert.Contains(t, string(b), "origin: "+url)
	st = moveStatus(t, run)
	assert.Contains(t, st.Message, "App Runner")

	// Moved for good: the App Runner service deleted after the move; there
	// is no way back to it then, and berth says so.
	r = run("move", "web", "--to", "fargate", "--image", "web="+local, "--guard", "1s", "--delete-apprunner")
	t.Logf("berth move --env prod web --to fargate --delete-apprunner:\n%s%s", r.stdout, r.stderr)
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	assert.Contains(t, r.stdout, "App Runner service "+arn+" deleted")
	assert.Equal(t, artypes.ServiceStatusDeleted, appRunnerState())
	assert.Equal(t, "berth-web", defaultOrigin(t, cl, id))
	r = run("move", "web", "--to", "apprunner", "--guard", "1s")
	assert.Equal(t, 1, r.code, r.stdout+r.stderr)
	assert.Contains(t, r.stderr, "DELETED")

	for _, op := range p.Calls() {
		assert.False(t, strings.HasPrefix(strings.ToLower(op), "route53"), "berth called %s", op)
	}
}

func moveStatus(t *testing.T, run func(args ...string) result) struct{ State, Message string } {
	t.Helper()
	r := run("--json", "status")
	require.Equal(t, 0, r.code, r.stderr)
	var st struct {
		Apps []struct {
			Services []struct{ Name, State, Message string }
		}
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &st), r.stdout)
	for _, s := range st.Apps[0].Services {
		if s.Name == "web" {
			return struct{ State, Message string }{s.State, s.Message}
		}
	}
	t.Fatalf("no service web in %s", r.stdout)
	return struct{ State, Message string }{}
}

func distributionOf(t *testing.T, cl *clients.Clients, app string) string {
	t.Helper()
	list, err := cl.CloudFront.ListDistributions(context.Background(), &cloudfront.ListDistributionsInput{})
	require.NoError(t, err)
	require.NotNil(t, list.DistributionList)
	for _, d := range list.DistributionList.Items {
		if strings.Contains(aws.ToString(d.Comment), app) && !aws.ToBool(d.Staging) {
			return aws.ToString(d.Id)
		}
	}
	t.Fatalf("no distribution of %s", app)
	return ""
}

func defaultOrigin(t *testing.T, cl *clients.Clients, id string) string {
	t.Helper()
	dc, err := cl.CloudFront.GetDistributionConfig(context.Background(), &cloudfront.GetDistributionConfigInput{Id: aws.String(id)})
	require.NoError(t, err)
	return aws.ToString(dc.DistributionConfig.DefaultCacheBehavior.TargetOriginId)
}

func unhealthyTargets() *awstest.Response {
	return &awstest.Response{StatusCode: 200, Header: map[string][]string{"Content-Type": {"text/xml"}}, Body: []byte(`<DescribeTargetHealthResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"><DescribeTargetHealthResult><TargetHealthDescriptions>` +
		`<member><Target><Id>10.0.0.1</Id><Port>8080</Port></Target><HealthCheckPort>8080</HealthCheckPort><TargetHealth><State>unhealthy</State><Reason>Target.ResponseCodeMismatch</Reason></TargetHealth></member>` +
		`</TargetHealthDescriptions></DescribeTargetHealthResult><ResponseMetadata><RequestId>berth-test</RequestId></ResponseMetadata></DescribeTargetHealthResponse>`)}
}
