package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/apprunner"
	artypes "github.com/aws/aws-sdk-go-v2/service/apprunner/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/aws/apprunner"
	"github.com/berth-dev/berth/internal/aws/awstest"
	"github.com/berth-dev/berth/internal/aws/clients"
	"github.com/berth-dev/berth/internal/testutil"
)

// The founding decision's setup taken over as a user does it: an App Runner
// service that exists (the fake, made through the SDK), imported into
// berth.yaml, then deployed, failed, rolled back, paused and resumed, its
// logs read, and a migration run on the environment's ECS cluster with the
// App Runner service's image, env and secrets.
func TestAppRunnerServiceOnAWS(t *testing.T) {
	ctx := context.Background()
	p := awstest.UseProxy(t)
	sim := awstest.SimulateECS(t, p)
	fake := awstest.SimulateAppRunner(t, p)
	fake.SetPolls(0) // operations end at the first poll: no 5s waits
	t.Setenv("BERTH_HOST", "unix:///nonexistent/berth.sock")
	cl, err := clients.Load(ctx, "")
	require.NoError(t, err)

	const (
		imageA = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop-web@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		dbARN  = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop-db-AbCdEf"
	)
	created, err := cl.AppRunner.CreateService(ctx, &sdk.CreateServiceInput{
		ServiceName: aws.String(testutil.UniqueName(t, "ar")),
		SourceConfiguration: &artypes.SourceConfiguration{
			ImageRepository: &artypes.ImageRepository{
				ImageIdentifier: aws.String(imageA), ImageRepositoryType: artypes.ImageRepositoryTypeEcr,
				ImageConfiguration: &artypes.ImageConfiguration{
					Port:                        aws.String("8080"),
					RuntimeEnvironmentVariables: map[string]string{"MODE": "prod"},
					RuntimeEnvironmentSecrets:   map[string]string{"DATABASE_URL": dbARN},
				},
			},
			AuthenticationConfiguration: &artypes.AuthenticationConfiguration{AccessRoleArn: aws.String("arn:aws:iam::123456789012:role/AppRunnerECRAccess")},
		},
		InstanceConfiguration:    &artypes.InstanceConfiguration{Cpu: aws.String("1 vCPU"), Memory: aws.String("2 GB")},
		HealthCheckConfiguration: &artypes.HealthCheckConfiguration{Protocol: artypes.HealthCheckProtocolHttp, Path: aws.String("/health"), Interval: aws.Int32(5)},
	})
	require.NoError(t, err)
	arn := aws.ToString(created.Service.ServiceArn)
	_, err = cl.AppRunner.DescribeService(ctx, &sdk.DescribeServiceInput{ServiceArn: aws.String(arn)}) // CreateService's operation ends
	require.NoError(t, err)

	local := testutil.TestAppImage(t) // built before the test leaves the module
	app := testutil.UniqueName(t, "c")
	file := writeSpec(t, "app: "+app+"\nenvironments:\n  prod:\n    engine: aws\n  us:\n    engine: aws\n    region: us-east-1\n")
	t.Chdir(filepath.Dir(file))
	run := func(args ...string) result {
		t.Helper()
		return berth(t, append([]string{"--env", "prod"}, args...)...)
	}
	status := func() api.ServiceStatus {
		t.Helper()
		r := run("--json", "status")
		var st api.Status
		require.Equal(t, 0, r.code, r.stderr)
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &st), r.stdout)
		require.Len(t, st.Apps, 1)
		require.Len(t, st.Apps[0].Services, 1)
		return st.Apps[0].Services[0]
	}

	// An environment not in berth.yaml is named, with how to add it.
	if r := berth(t, "--env", "staging", "import", "apprunner", arn); r.code != 1 || !strings.Contains(r.stderr, `no environment "staging"`) {
		t.Fatalf("import into a missing environment: %d %q", r.code, r.stderr)
	}
	// berth's records go to the environment's region: it must be the service's.
	if r := berth(t, "--env", "us", "import", "apprunner", arn); r.code != 1 || !strings.Contains(r.stderr, "region us-east-1, the App Runner service in eu-west-1") {
		t.Fatalf("import into another region: %d %q", r.code, r.stderr)
	}

	// Import: berth.yaml gets the service, AWS the tags, the state revision 1.
	r := run("import", "apprunner", arn, "--name", "web")
	t.Logf("berth import apprunner:\n%s", r.stdout)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "revision 1")
	yaml, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Contains(t, string(yaml), "    apprunner: "+arn)
	assert.Contains(t, string(yaml), "image: "+imageA)
	tags, err := cl.AppRunner.ListTagsForResource(ctx, &sdk.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
	require.NoError(t, err)
	assert.Contains(t, tags.Tags, artypes.Tag{Key: aws.String("berth.service"), Value: aws.String("web")})
	if r := run("import", "apprunner", arn, "--name", "web"); r.code != 1 || !strings.Contains(r.stderr, "exists already") {
		t.Fatalf("second import: %d %q", r.code, r.stderr)
	}
	st := status()
	assert.Equal(t, "running", st.State)
	assert.Equal(t, imageA, st.Image)
	assert.Equal(t, 1, st.Revision)
	require.NotEmpty(t, st.URLs)
	assert.True(t, strings.HasPrefix(st.URLs[0], "https://"), st.URLs)

	// A migration task runs on the cluster with what App Runner runs.
	f, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("tasks:\n  migrate:\n    service: web\n    command: [/srv, migrate]\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	var mu sync.Mutex
	var runTaskDefs []string
	p.Intercept(func(c *awstest.Call) *awstest.Response {
		if c.Op() == "ecs:RunTask" {
			var in struct{ TaskDefinition string }
			_ = json.Unmarshal(c.Body, &in)
			mu.Lock()
			runTaskDefs = append(runTaskDefs, in.TaskDefinition)
			mu.Unlock()
		}
		return nil
	})
	sim.OnRun(func(cmd []string) (int, []string) { return 3, []string{"migrating with " + strings.Join(cmd, " ")} })
	r = run("task", "run", "migrate")
	if r.code != 3 || !strings.Contains(r.stdout, "migrating with /srv migrate") {
		t.Fatalf("task run migrate: exit %d (want the task's 3)\n%s%s", r.code, r.stdout, r.stderr)
	}
	mu.Lock()
	require.Len(t, runTaskDefs, 1)
	td, err := cl.ECS.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(runTaskDefs[0])})
	mu.Unlock()
	require.NoError(t, err)
	c := td.TaskDefinition.ContainerDefinitions[0]
	assert.Equal(t, imageA, aws.ToString(c.Image))
	assert.Contains(t, c.Secrets, ecsSecret("DATABASE_URL", dbARN))
	assert.Contains(t, envOf(c.Environment), "MODE=prod")

	// Deploy: the image pushed to ECR, App Runner updated to its digest.
	r = run("deploy", "--image", "web="+local)
	t.Logf("berth deploy --env prod:\n%s", r.stdout)
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	assert.Contains(t, r.stdout, "UPDATE SERVICE")
	imageB := fake.ServingImage(arn)
	require.Contains(t, imageB, "@sha256:")
	require.NotEqual(t, imageA, imageB)
	st = status()
	assert.Equal(t, 2, st.Revision)
	assert.Equal(t, imageB, st.Image)

	// A deployment App Runner rolls back: exit 1, the previous image serves.
	fake.FailNextDeployment("health check failed on port 8080")
	r = run("deploy", "--image", "web="+local)
	if r.code != 1 || !strings.Contains(r.stderr, imageB+" keeps serving") {
		t.Fatalf("failed deploy: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	assert.Equal(t, imageB, fake.ServingImage(arn))
	r = run("revisions", "web")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "failed")

	// Rollback: the earlier digest again.
	r = run("rollback", "web")
	t.Logf("berth rollback --env prod web:\n%s", r.stdout)
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	assert.Equal(t, imageA, fake.ServingImage(arn))
	st = status()
	assert.Equal(t, 1, st.Revision)
	assert.Equal(t, imageA, st.Image)

	// Logs: App Runner's application log group.
	group, _, err := apprunner.LogGroups(arn)
	require.NoError(t, err)
	_, err = cl.Logs.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(group)})
	require.NoError(t, err)
	_, err = cl.Logs.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String(group), LogStreamName: aws.String("instance/0123abcd")})
	require.NoError(t, err)
	_, err = cl.Logs.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String(group), LogStreamName: aws.String("instance/0123abcd"),
		LogEvents: []cwtypes.InputLogEvent{{Message: aws.String("listening on :8080"), Timestamp: aws.Int64(time.Now().UnixMilli())}}})
	require.NoError(t, err)
	if r := run("logs", "web"); r.code != 0 || !strings.Contains(r.stdout, "listening on :8080") {
		t.Fatalf("logs: %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// Pause and resume.
	if r := run("pause", "web"); r.code != 0 {
		t.Fatalf("pause: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	d, err := cl.AppRunner.DescribeService(ctx, &sdk.DescribeServiceInput{ServiceArn: aws.String(arn)})
	require.NoError(t, err)
	assert.Equal(t, artypes.ServiceStatusPaused, d.Service.Status)
	assert.Equal(t, "paused", status().State)
	if r := run("resume", "web"); r.code != 0 {
		t.Fatalf("resume: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	assert.Equal(t, "running", status().State)
	if r := run("scale", "web=3"); r.code != 1 || !strings.Contains(r.stderr, "App Runner") {
		t.Fatalf("scale: %d %q", r.code, r.stderr)
	}

	// release: runs on the cluster before App Runner is updated; a failed
	// one leaves App Runner as it was.
	yaml, err = os.ReadFile(file)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file, []byte(strings.Replace(string(yaml), "    port: 8080\n", "    port: 8080\n    release: [/srv, migrate, --release]\n", 1)), 0o644))
	r = run("plan")
	if r.code != 0 || !strings.Contains(r.stdout, "update  App Runner service "+arn) || !strings.Contains(r.stdout, "release task of web") || strings.Contains(r.stdout, "load balancer") {
		t.Fatalf("plan: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	mu.Lock()
	runs := len(runTaskDefs)
	mu.Unlock()
	r = run("deploy", "--image", "web="+local)
	if r.code != 1 || !strings.Contains(r.stdout, "migrating with /srv migrate --release") || !strings.Contains(r.stderr, "release /srv migrate --release exited 3") {
		t.Fatalf("deploy with a failing release: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	mu.Lock()
	assert.Equal(t, runs+1, len(runTaskDefs), "one release task run")
	mu.Unlock()
	assert.Equal(t, imageA, fake.ServingImage(arn), "App Runner untouched after a failed release")
	sim.OnRun(func(cmd []string) (int, []string) { return 0, []string{"migrated"} })
	if r := run("deploy", "--image", "web="+local); r.code != 0 || !strings.Contains(r.stdout, "migrated") {
		t.Fatalf("deploy with its release: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	assert.Equal(t, imageB, fake.ServingImage(arn))

	// A scheduled task of the service runs like the revision serving.
	yaml, err = os.ReadFile(file)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file, append(yaml, "  nightly:\n    service: web\n    command: [/srv, nightly]\n    schedule: \"@daily\"\n"...), 0o644))
	if r := run("deploy", "--image", "web="+local); r.code != 0 || !strings.Contains(r.stdout, "task nightly: cron(0 0 * * ? *)") {
		t.Fatalf("deploy with a scheduled task: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	sched, err := cl.Scheduler.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String("task-nightly"), GroupName: aws.String("berth-" + app + "-prod")})
	require.NoError(t, err)
	std, err := cl.ECS.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: sched.Target.EcsParameters.TaskDefinitionArn})
	require.NoError(t, err)
	assert.Equal(t, fake.ServingImage(arn), aws.ToString(std.TaskDefinition.ContainerDefinitions[0].Image))

	if r := run("events"); r.code != 0 || !strings.Contains(r.stdout, "imported") || !strings.Contains(r.stdout, "rolled back") {
		t.Fatalf("events: %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// destroy removes berth's records and resources, not the App Runner
	// service it imported, nor the images that service runs.
	r = run("destroy")
	if r.code != 0 || !strings.Contains(r.stdout, "kept ECR repository") {
		t.Fatalf("destroy: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	d, err = cl.AppRunner.DescribeService(ctx, &sdk.DescribeServiceInput{ServiceArn: aws.String(arn)})
	require.NoError(t, err)
	assert.Equal(t, artypes.ServiceStatusRunning, d.Service.Status)
	assert.Equal(t, imageB, fake.ServingImage(arn))
}

func ecsSecret(name, arn string) ecstypes.Secret {
	return ecstypes.Secret{Name: aws.String(name), ValueFrom: aws.String(arn)}
}

func envOf(kv []ecstypes.KeyValuePair) []string {
	var out []string
	for _, e := range kv {
		out = append(out, aws.ToString(e.Name)+"="+aws.ToString(e.Value))
	}
	return out
}
