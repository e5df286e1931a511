package apprunner_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/apprunner"
	"github.com/aws/aws-sdk-go-v2/service/apprunner/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/aws/apprunner"
	"github.com/berth-dev/berth/internal/aws/awstest"
	"github.com/berth-dev/berth/internal/aws/clients"
	"github.com/berth-dev/berth/internal/spec"
)

func TestMain(m *testing.M) {
	code := m.Run()
	awstest.Stop()
	os.Exit(code)
}

const (
	repo      = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop-web"
	imageA    = repo + "@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	imageB    = repo + "@sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	dbSecret  = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop/db-AbCdEf"
	apiSecret = "arn:aws:ssm:eu-west-1:123456789012:parameter/shop/api-key"
	obsARN    = "arn:aws:apprunner:eu-west-1:123456789012:observabilityconfiguration/shop-tracing/1/0123456789abcdef0123456789abcdef"
	roleARN   = "arn:aws:iam::123456789012:role/shop-web-instance"
	accessARN = "arn:aws:iam::123456789012:role/service-role/AppRunnerECRAccessRole"
)

// world is an App Runner (the fake, behind the proxy) and the clients a
// user's berth would build from the standard chain.
type world struct {
	fake   *awstest.AppRunner
	proxy  *awstest.Proxy
	c      *clients.Clients
	runner *apprunner.Runner
}

func newWorld(t *testing.T) *world {
	t.Helper()
	p := awstest.StartProxy(t, awstest.MotoEndpoint(t), "")
	awstest.UseEndpoint(t, p.URL)
	fake := awstest.SimulateAppRunner(t, p)
	c, err := clients.Load(context.Background(), "")
	require.NoError(t, err)
	r := apprunner.New(c)
	r.Poll = time.Millisecond
	return &world{fake: fake, proxy: p, c: c, runner: r}
}

// existing makes the App Runner service a team has before berth: an ECR
// image, port 8080, a start command, env, a Secrets Manager secret and an
// SSM parameter, 1 vCPU / 3 GB, an HTTP health check, its own auto
// scaling configuration, tracing on. It returns the service's ARN once it
// runs.
func (w *world) existing(t *testing.T, name string) string {
	t.Helper()
	ctx := context.Background()
	asc, err := w.c.AppRunner.CreateAutoScalingConfiguration(ctx, &sdk.CreateAutoScalingConfigurationInput{
		AutoScalingConfigurationName: aws.String(name + "-scaling"),
		MinSize:                      aws.Int32(2), MaxSize: aws.Int32(10), MaxConcurrency: aws.Int32(50),
	})
	require.NoError(t, err)
	out, err := w.c.AppRunner.CreateService(ctx, &sdk.CreateServiceInput{
		ServiceName: aws.String(name),
		SourceConfiguration: &types.SourceConfiguration{
			ImageRepository: &types.ImageRepository{
				ImageIdentifier:     aws.String(imageA),
				ImageRepositoryType: types.ImageRepositoryTypeEcr,
				ImageConfiguration: &types.ImageConfiguration{
					Port:                        aws.String("8080"),
					StartCommand:                aws.String(`./server --listen ":8080"`),
					RuntimeEnvironmentVariables: map[string]string{"LOG_LEVEL": "info", "REGION_NAME": "eu-west-1"},
					RuntimeEnvironmentSecrets:   map[string]string{"DATABASE_URL": dbSecret, "API_KEY": apiSecret},
				},
			},
			AutoDeploymentsEnabled:      aws.Bool(true),
			AuthenticationConfiguration: &types.AuthenticationConfiguration{AccessRoleArn: aws.String(accessARN)},
		},
		InstanceConfiguration: &types.InstanceConfiguration{Cpu: aws.String("1024"), Memory: aws.String("3 GB"), InstanceRoleArn: aws.String(roleARN)},
		HealthCheckConfiguration: &types.HealthCheckConfiguration{
			Protocol: types.HealthCheckProtocolHttp, Path: aws.String("/healthz"),
			Interval: aws.Int32(10), Timeout: aws.Int32(3), HealthyThreshold: aws.Int32(2), UnhealthyThreshold: aws.Int32(4),
		},
		AutoScalingConfigurationArn: asc.AutoScalingConfiguration.AutoScalingConfigurationArn,
		ObservabilityConfiguration:  &types.ServiceObservabilityConfiguration{ObservabilityEnabled: true, ObservabilityConfigurationArn: aws.String(obsARN)},
		Tags:                        []types.Tag{{Key: aws.String("team"), Value: aws.String("shop")}},
	})
	require.NoError(t, err)
	arn := aws.ToString(out.Service.ServiceArn)
	require.Eventually(t, func() bool {
		d, err := w.c.AppRunner.DescribeService(ctx, &sdk.DescribeServiceInput{ServiceArn: aws.String(arn)})
		return err == nil && d.Service.Status == types.ServiceStatusRunning
	}, 5*time.Second, time.Millisecond)
	return arn
}

func (w *world) describe(t *testing.T, arn string) *types.Service {
	t.Helper()
	d, err := w.c.AppRunner.DescribeService(context.Background(), &sdk.DescribeServiceInput{ServiceArn: aws.String(arn)})
	require.NoError(t, err)
	return d.Service
}

// TestImport: every field App Runner has that berth.yaml carries is read
// into the service, and what it does not carry is named.
func TestImport(t *testing.T) {
	w := newWorld(t)
	arn := w.existing(t, "shop_Web")

	imp, err := w.runner.Import(context.Background(), arn, "")
	require.NoError(t, err)
	s := imp.Service
	assert.Equal(t, "shop-web", s.Name)
	assert.Equal(t, imageA, s.Image)
	assert.Equal(t, 8080, s.Port)
	assert.Equal(t, []string{"./server", "--listen", ":8080"}, s.Command)
	assert.Equal(t, map[string]string{"LOG_LEVEL": "info", "REGION_NAME": "eu-west-1"}, s.Env)
	assert.Equal(t, []string{"API_KEY", "DATABASE_URL"}, s.Secrets)
	assert.Equal(t, map[string]string{"DATABASE_URL": dbSecret, "API_KEY": apiSecret}, imp.Secrets)
	assert.Equal(t, 1.0, s.CPU)
	assert.Equal(t, int64(3<<30), s.Memory)
	assert.Equal(t, &spec.Scale{Min: 2, Max: 10, Concurrency: 50}, s.Scale)
	assert.Equal(t, spec.Health{Path: "/healthz", Interval: 10 * time.Second, Timeout: 3 * time.Second, Healthy: 2, Unhealthy: 4}, s.Health)
	assert.Equal(t, arn, s.AppRunner)
	assert.Regexp(t, `^https://[0-9a-f]{10}\.eu-west-1\.awsapprunner\.com$`, imp.URL)
	notes := strings.Join(imp.Notes, "\n")
	assert.Contains(t, notes, obsARN)
	assert.Contains(t, notes, roleARN)

	// The block says where each secret comes from and what App Runner keeps.
	assert.Contains(t, imp.YAML, "- DATABASE_URL # "+dbSecret)
	assert.Contains(t, imp.YAML, "apprunner: "+arn)
	assert.Contains(t, imp.YAML, "scale: {min: 2, max: 10, concurrency: 50}")
	assert.Contains(t, imp.YAML, obsARN)
	t.Logf("imported block:\n%s", imp.YAML)

	// A TCP health check (no path) and App Runner's defaults.
	ctx := context.Background()
	_, err = w.c.AppRunner.UpdateService(ctx, &sdk.UpdateServiceInput{ServiceArn: aws.String(arn),
		HealthCheckConfiguration: &types.HealthCheckConfiguration{Protocol: types.HealthCheckProtocolTcp}})
	require.NoError(t, err)
	_, err = w.runner.Status(ctx, arn) // polls move the fake's operation on
	require.NoError(t, err)
	require.Eventually(t, func() bool { return w.describe(t, arn).Status == types.ServiceStatusRunning }, 5*time.Second, time.Millisecond)
	imp, err = w.runner.Import(ctx, arn, "web")
	require.NoError(t, err)
	assert.Equal(t, "web", imp.Service.Name)
	assert.Equal(t, spec.Health{Interval: 5 * time.Second, Timeout: 2 * time.Second, Healthy: 1, Unhealthy: 5}, imp.Service.Health)

	_, err = w.runner.Import(ctx, strings.Replace(arn, "shop_Web", "nosuch", 1), "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "does not exist in this account and region")
}

// TestAddToSpec: the imported block goes under services: of an existing
// berth.yaml, whose keys, order and comments stay; berth reads the result
// back to the same service; a second import of the same name is refused.
func TestAddToSpec(t *testing.T) {
	w := newWorld(t)
	arn := w.existing(t, "shop-web")
	imp, err := w.runner.Import(context.Background(), arn, "web")
	require.NoError(t, err)

	before := `# the shop, on App Runner until it needs Fargate
app: shop
environments:
  prod: {engine: aws, region: eu-west-1}   # the only AWS one
services:
  # the worker stays local for now
  worker:
    image: worker:1
    command: ["./worker"]
tasks:
  migrate: {service: worker, command: ["./worker", "migrate"]}
`
	after, err := apprunner.AddToSpec([]byte(before), imp)
	require.NoError(t, err)
	t.Logf("berth.yaml after import:\n%s", after)
	for _, kept := range []string{"# the shop, on App Runner until it needs Fargate", "# the only AWS one", "# the worker stays local for now", "migrate: {service: worker"} {
		assert.Contains(t, string(after), kept)
	}
	sp, err := spec.Parse("berth.yaml", after)
	require.NoError(t, err)
	assert.Equal(t, []string{"worker", "web"}, sp.ServiceOrder)
	assert.Equal(t, imp.Service, sp.Services["web"])
	assert.Equal(t, "prod", sp.EnvironmentOrder[0])
	assert.Equal(t, []string{"migrate"}, sp.TaskOrder)

	_, err = apprunner.AddToSpec(after, imp)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "berth.yaml:10: service web exists already")

	// A berth.yaml of comments only, and one with no services yet.
	after, err = apprunner.AddToSpec([]byte("# to be written\n"), imp)
	require.NoError(t, err)
	assert.Contains(t, string(after), "web:")
	// A berth.yaml with no services yet.
	after, err = apprunner.AddToSpec([]byte("app: shop\nservices: {}\n"), imp)
	require.NoError(t, err)
	sp, err = spec.Parse("berth.yaml", after)
	require.NoError(t, err)
	assert.Equal(t, imp.Service, sp.Services["web"])
}

// spec is the berth.yaml service an import of arn gives, for deploys.
func imported(t *testing.T, w *world, arn string) *spec.Service {
	t.Helper()
	imp, err := w.runner.Import(context.Background(), arn, "web")
	require.NoError(t, err)
	return imp.Service
}

// TestDeploy: a deploy updates the service to the new digest with the
// spec's configuration, waits for the operation and prints its phases;
// the secrets keep their ARNs.
func TestDeploy(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	arn := w.existing(t, "shop-web")
	svc := imported(t, w, arn)
	svc.Env = map[string]string{"LOG_LEVEL": "debug"}
	svc.CPU, svc.Memory = 2, 4<<30
	svc.Health.Path = "/ready"
	w.fake.SetPolls(3)

	var out strings.Builder
	res, err := w.runner.Deploy(ctx, svc, imageB, &out)
	require.NoError(t, err, out.String())
	t.Logf("deploy printed:\n%s", out.String())
	assert.Equal(t, imageB, res.Image)
	assert.Equal(t, imageA, res.Previous)
	assert.Equal(t, "UPDATE_SERVICE", res.Operation.Type)
	assert.Equal(t, "SUCCEEDED", res.Operation.Status)
	assert.Contains(t, out.String(), "UPDATE SERVICE IN PROGRESS")
	assert.Contains(t, out.String(), "UPDATE SERVICE SUCCEEDED")
	assert.Contains(t, out.String(), "automatic deployments off")
	assert.Equal(t, imageB, w.fake.ServingImage(arn))

	got := w.describe(t, arn)
	assert.Equal(t, types.ServiceStatusRunning, got.Status)
	ic := got.SourceConfiguration.ImageRepository.ImageConfiguration
	assert.Equal(t, map[string]string{"LOG_LEVEL": "debug"}, ic.RuntimeEnvironmentVariables)
	assert.Equal(t, map[string]string{"DATABASE_URL": dbSecret, "API_KEY": apiSecret}, ic.RuntimeEnvironmentSecrets)
	assert.Equal(t, `./server --listen :8080`, aws.ToString(ic.StartCommand))
	assert.Equal(t, "2 vCPU", aws.ToString(got.InstanceConfiguration.Cpu))
	assert.Equal(t, "4 GB", aws.ToString(got.InstanceConfiguration.Memory))
	assert.Equal(t, roleARN, aws.ToString(got.InstanceConfiguration.InstanceRoleArn))
	assert.Equal(t, "/ready", aws.ToString(got.HealthCheckConfiguration.Path))
	assert.False(t, aws.ToBool(got.SourceConfiguration.AutoDeploymentsEnabled))
	assert.True(t, got.ObservabilityConfiguration.ObservabilityEnabled, "tracing is kept")
	assert.Equal(t, "shop-web-scaling", aws.ToString(got.AutoScalingConfigurationSummary.AutoScalingConfigurationName), "same scale: same configuration")

	st, err := w.runner.Status(ctx, arn)
	require.NoError(t, err)
	assert.Equal(t, "RUNNING", st.State)
	assert.Equal(t, imageB, st.Image)
	assert.Equal(t, res.URL, st.URL)
	assert.Equal(t, 2.0, st.CPU)
	require.NotNil(t, st.Last)
	assert.Equal(t, res.Operation.ID, st.Last.ID)

	// A new scale is a new auto scaling configuration, berth's.
	svc.Scale = &spec.Scale{Min: 1, Max: 4, Concurrency: 80}
	_, err = w.runner.Deploy(ctx, svc, imageB, &out)
	require.NoError(t, err)
	sum := w.describe(t, arn).AutoScalingConfigurationSummary
	assert.Equal(t, "berth-web", aws.ToString(sum.AutoScalingConfigurationName))
	imp, err := w.runner.Import(ctx, arn, "web")
	require.NoError(t, err)
	assert.Equal(t, svc.Scale, imp.Service.Scale)
}

// TestDeployThrottled: a throttled call during the wait is retried, not
// reported.
func TestDeployThrottled(t *testing.T) {
	w := newWorld(t)
	arn := w.existing(t, "shop-web")
	svc := imported(t, w, arn)
	w.fake.Fail("ListOperations", 2, 400, "ThrottlingException")
	w.fake.Fail("DescribeService", 1, 503, "InternalServiceErrorException")
	res, err := w.runner.Deploy(context.Background(), svc, imageB, &strings.Builder{})
	require.NoError(t, err)
	assert.Equal(t, imageB, res.Image)
	assert.GreaterOrEqual(t, w.proxy.Count("apprunner:ListOperations"), 3)
}

// TestDeployFails: a deployment App Runner rolls back is reported as a
// failure naming the operation's status, and the previous image keeps
// serving.
func TestDeployFails(t *testing.T) {
	w := newWorld(t)
	arn := w.existing(t, "shop-web")
	svc := imported(t, w, arn)
	w.fake.FailNextDeployment("health check failed on /healthz")

	var out strings.Builder
	res, err := w.runner.Deploy(context.Background(), svc, imageB, &out)
	require.ErrorIs(t, err, apprunner.ErrDeployFailed)
	t.Logf("deploy printed:\n%s\nerror: %v", out.String(), err)
	assert.Contains(t, err.Error(), "ROLLBACK_SUCCEEDED")
	assert.Contains(t, err.Error(), imageA+" keeps serving")
	assert.NotContains(t, err.Error(), "\n")
	assert.Contains(t, out.String(), "UPDATE SERVICE ROLLBACK IN PROGRESS")
	assert.Equal(t, imageA, res.Image)
	assert.Equal(t, imageA, w.fake.ServingImage(arn))
	assert.Equal(t, types.ServiceStatusRunning, w.describe(t, arn).Status)

	// The next deploy goes through.
	res, err = w.runner.Deploy(context.Background(), svc, imageB, &out)
	require.NoError(t, err)
	assert.Equal(t, imageB, res.Image)
}

// TestRollback: a rollback returns the service to the earlier digest.
func TestRollback(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	arn := w.existing(t, "shop-web")
	svc := imported(t, w, arn)
	_, err := w.runner.Deploy(ctx, svc, imageB, &strings.Builder{})
	require.NoError(t, err)
	require.Equal(t, imageB, w.fake.ServingImage(arn))

	var out strings.Builder
	res, err := w.runner.Rollback(ctx, svc, imageA, &out)
	require.NoError(t, err)
	assert.Equal(t, imageA, res.Image)
	assert.Equal(t, imageB, res.Previous)
	assert.Equal(t, imageA, w.fake.ServingImage(arn))
	assert.Contains(t, out.String(), "UPDATE SERVICE SUCCEEDED")
}

// TestPauseResume: pause and resume wait for App Runner; a deploy of a
// paused service is refused saying to resume it; pausing twice is no
// error.
func TestPauseResume(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	arn := w.existing(t, "shop-web")
	svc := imported(t, w, arn)

	var out strings.Builder
	require.NoError(t, w.runner.Pause(ctx, arn, &out))
	assert.Equal(t, types.ServiceStatusPaused, w.describe(t, arn).Status)
	assert.Contains(t, out.String(), "PAUSE SERVICE SUCCEEDED")
	require.NoError(t, w.runner.Pause(ctx, arn, &out))
	assert.Contains(t, out.String(), "already PAUSED")

	_, err := w.runner.Deploy(ctx, svc, imageB, &out)
	require.ErrorIs(t, err, apprunner.ErrNotRunning)
	assert.Contains(t, err.Error(), "resume it first")
	assert.Equal(t, imageA, w.fake.ServingImage(arn))

	require.NoError(t, w.runner.Resume(ctx, arn, &out))
	assert.Equal(t, types.ServiceStatusRunning, w.describe(t, arn).Status)
	assert.Contains(t, out.String(), "RESUME SERVICE SUCCEEDED")
	st, err := w.runner.Status(ctx, arn)
	require.NoError(t, err)
	assert.Equal(t, "RUNNING", st.State)
	assert.Equal(t, "RESUME_SERVICE", st.Last.Type)
}

// TestDeployWhileBusy: a deploy while another operation runs is refused
// saying to wait; a wait longer than Timeout says the operation goes on.
func TestDeployWhileBusy(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	arn := w.existing(t, "shop-web")
	svc := imported(t, w, arn)
	w.fake.SetPolls(1000)
	_, err := w.c.AppRunner.StartDeployment(ctx, &sdk.StartDeploymentInput{ServiceArn: aws.String(arn)})
	require.NoError(t, err)
	_, err = w.runner.Deploy(ctx, svc, imageB, &strings.Builder{})
	require.ErrorIs(t, err, apprunner.ErrNotRunning)
	assert.Contains(t, err.Error(), "an operation is in progress; wait until it ends")

	w2 := newWorld(t)
	arn = w2.existing(t, "shop-api")
	w2.fake.SetPolls(1000)
	w2.runner.Timeout = 50 * time.Millisecond
	_, err = w2.runner.Deploy(ctx, imported(t, w2, arn), imageB, &strings.Builder{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "still UPDATE_SERVICE IN_PROGRESS after 50ms: it goes on in AWS")
}

// TestRuntime: what a task on ECS needs to run like the service.
func TestRuntime(t *testing.T) {
	w := newWorld(t)
	arn := w.existing(t, "shop-web")
	rt, err := w.runner.Runtime(context.Background(), arn)
	require.NoError(t, err)
	assert.Equal(t, &apprunner.Runtime{
		Image: imageA, Port: 8080, Command: []string{"./server", "--listen", ":8080"},
		Env:     map[string]string{"LOG_LEVEL": "info", "REGION_NAME": "eu-west-1"},
		Secrets: map[string]string{"DATABASE_URL": dbSecret, "API_KEY": apiSecret},
		CPU:     1, Memory: 3 << 30, InstanceRole: roleARN,
	}, rt)
}

// TestAdopt: the service carries berth's tags beside its own.
func TestAdopt(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	arn := w.existing(t, "shop-web")
	require.NoError(t, w.runner.Adopt(ctx, arn, "shop", "prod", "web"))
	out, err := w.c.AppRunner.ListTagsForResource(ctx, &sdk.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
	require.NoError(t, err)
	tags := map[string]string{}
	for _, tag := range out.Tags {
		tags[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
	}
	assert.Equal(t, map[string]string{"team": "shop", "berth.app": "shop", "berth.env": "prod", "berth.service": "web"}, tags)
}

// TestDeployRefusals: what App Runner cannot take is refused before any
// change, naming the key and what would work.
func TestDeployRefusals(t *testing.T) {
	w := newWorld(t)
	arn := w.existing(t, "shop-web")
	base := imported(t, w, arn)
	cases := []struct {
		name   string
		change func(s *spec.Service)
		image  string
		want   string
	}{
		{"tag not digest", func(*spec.Service) {}, repo + ":latest", "not pinned by digest"},
		{"cpu", func(s *spec.Service) { s.CPU = 3 }, imageB, "cpu 3: App Runner sells 0.25, 0.5, 1, 2 or 4 vCPU"},
		{"memory", func(s *spec.Service) { s.Memory = 8 << 30 }, imageB, "App Runner sells 2GiB, 3GiB, 4GiB with 1 vCPU"},
		{"interval", func(s *spec.Service) { s.Health.Interval = 30 * time.Second }, imageB, "health.interval 30s"},
		{"scale", func(s *spec.Service) { s.Scale = &spec.Scale{Min: 1, Max: 50, Concurrency: 10} }, imageB, "scale.max 50"},
		{"unknown secret", func(s *spec.Service) { s.Secrets = append(s.Secrets, "STRIPE_KEY") }, imageB, "secret STRIPE_KEY is not referenced"},
		{"worker", func(s *spec.Service) { s.Port = 0 }, imageB, "needs port:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := *base
			s.Secrets = append([]string(nil), base.Secrets...)
			tc.change(&s)
			before := w.proxy.Count("apprunner:UpdateService")
			_, err := w.runner.Deploy(context.Background(), &s, tc.image, &strings.Builder{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Equal(t, before, w.proxy.Count("apprunner:UpdateService"), "nothing changed")
		})
	}
	assert.Equal(t, imageA, w.fake.ServingImage(arn))

	// A secret the caller can name an ARN for is added.
	w.runner.SecretARN = func(name string) (string, error) {
		return "arn:aws:secretsmanager:eu-west-1:123456789012:secret:berth/prod/shop/web/" + name, nil
	}
	s := *base
	s.Secrets = append(append([]string(nil), base.Secrets...), "STRIPE_KEY")
	_, err := w.runner.Deploy(context.Background(), &s, imageB, &strings.Builder{})
	require.NoError(t, err)
	sec := w.describe(t, arn).SourceConfiguration.ImageRepository.ImageConfiguration.RuntimeEnvironmentSecrets
	assert.Equal(t, dbSecret, sec["DATABASE_URL"])
	assert.Contains(t, sec["STRIPE_KEY"], "berth/prod/shop/web/STRIPE_KEY")
}
