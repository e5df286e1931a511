package fargate

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/spec"
)

const (
	registry   = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/"
	digest     = "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	secretARN  = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:berth/prod/shop/"
	execRole   = "arn:aws:iam::123456789012:role/berth-shop-prod-exec"
	taskRole   = "arn:aws:iam::123456789012:role/shop-web"
	shopLogGrp = "/berth/shop/prod"
)

// shopSpec has a web service with an init sidecar, a proxy that waits for
// it, and a restartable helper.
const shopSpec = `app: shop
environments:
  prod: {engine: aws, region: eu-west-1}
services:
  web:
    image: web:1
    port: 8080
    command: ["./web", "serve"]
    cpu: 0.5
    memory: 1GiB
    platform: linux/arm64
    env: {LOG_LEVEL: debug, APP_MODE: prod}
    secrets: [STRIPE_KEY, DATABASE_URL]
    depends_on: {migrate: success, proxy: start}
    sidecars:
      migrate: {image: web:1, command: ["./web", "migrate"], essential: false, secrets: [DATABASE_URL]}
      proxy: {image: envoy:1, cpu: 0.25, memory: 512MiB, depends_on: {migrate: complete}}
      stats: {image: stats:1, essential: false, env: {PORT: "9102"}}
  worker:
    image: worker:1
`

// shopInput is the Input deploy would build for web's revision 7.
func shopInput(t testing.TB) Input {
	t.Helper()
	sp := parse(t, shopSpec)
	require.Empty(t, Check(sp, "prod"))
	return Input{
		App: "shop", Env: "prod", Service: sp.Services["web"], Revision: 7,
		Image: registry + "shop-web" + digest,
		SidecarImages: map[string]string{
			"migrate": registry + "shop-web" + digest,
			"proxy":   registry + "shop-proxy" + digest,
			"stats":   registry + "shop-stats" + digest,
		},
		SecretARNs: map[string]string{
			"DATABASE_URL": secretARN + "DATABASE_URL-AbCdEf",
			"STRIPE_KEY":   secretARN + "STRIPE_KEY-GhIjKl",
		},
		LogGroup: shopLogGrp, Region: "eu-west-1",
		ExecutionRoleARN: execRole, TaskRoleARN: taskRole,
	}
}

func TestTaskDefinition(t *testing.T) {
	td, err := TaskDefinition(shopInput(t))
	require.NoError(t, err)

	assert.Equal(t, "shop-prod-web", aws.ToString(td.Family), "the environment is in the family: two environments of one app share an account")
	assert.Equal(t, types.NetworkModeAwsvpc, td.NetworkMode)
	assert.Equal(t, []types.Compatibility{types.CompatibilityFargate}, td.RequiresCompatibilities)
	// web 0.5 + proxy 0.25 with migrate and stats unset: at least 0.75
	// vCPU and 1.5 GiB, so 1 vCPU with 2 GiB.
	assert.Equal(t, "1024", aws.ToString(td.Cpu))
	assert.Equal(t, "2048", aws.ToString(td.Memory))
	assert.Equal(t, &types.RuntimePlatform{CpuArchitecture: types.CPUArchitectureArm64, OperatingSystemFamily: types.OSFamilyLinux}, td.RuntimePlatform)
	assert.Equal(t, execRole, aws.ToString(td.ExecutionRoleArn))
	assert.Equal(t, taskRole, aws.ToString(td.TaskRoleArn))
	assert.Equal(t, map[string]string{"berth.app": "shop", "berth.env": "prod", "berth.service": "web", "berth.revision": "7"}, tags(td.Tags))

	require.Len(t, td.ContainerDefinitions, 4)
	names := []string{}
	for _, c := range td.ContainerDefinitions {
		names = append(names, aws.ToString(c.Name))
		assert.Equal(t, types.LogDriverAwslogs, c.LogConfiguration.LogDriver)
		assert.Equal(t, map[string]string{"awslogs-group": shopLogGrp, "awslogs-region": "eu-west-1", "awslogs-stream-prefix": "web"}, c.LogConfiguration.Options)
		assert.Nil(t, c.HealthCheck, "no container health check: the ALB checks from outside")
		require.NotNil(t, c.MemoryReservation, "moto's RunTask needs memory or memoryReservation on every container")
		assert.Positive(t, *c.MemoryReservation)
	}
	assert.Equal(t, []string{"web", "migrate", "proxy", "stats"}, names, "the service's container first, then sidecars in file order")

	web := td.ContainerDefinitions[0]
	assert.Equal(t, registry+"shop-web"+digest, aws.ToString(web.Image))
	assert.True(t, aws.ToBool(web.Essential))
	assert.Equal(t, []string{"./web", "serve"}, web.Command)
	require.Len(t, web.PortMappings, 1)
	assert.Equal(t, int32(8080), aws.ToInt32(web.PortMappings[0].ContainerPort))
	assert.Equal(t, types.TransportProtocolTcp, web.PortMappings[0].Protocol)
	assert.Equal(t, []string{"APP_MODE=prod", "LOG_LEVEL=debug", "PORT=8080"}, pairs(web.Environment), "sorted by name, with $PORT as the local engine sets it")
	assert.Equal(t, []string{"DATABASE_URL=" + secretARN + "DATABASE_URL-AbCdEf", "STRIPE_KEY=" + secretARN + "STRIPE_KEY-GhIjKl"}, secrets(web.Secrets))
	assert.Equal(t, []string{"migrate:SUCCESS", "proxy:START"}, deps(web.DependsOn))
	assert.Equal(t, int32(512), web.Cpu)
	assert.Equal(t, int32(1024), aws.ToInt32(web.Memory))
	assert.Equal(t, int32(10), aws.ToInt32(web.StopTimeout))

	migrate := td.ContainerDefinitions[1]
	assert.False(t, aws.ToBool(migrate.Essential))
	assert.Nil(t, migrate.RestartPolicy, "an init container runs once")
	assert.Empty(t, migrate.PortMappings)
	assert.Equal(t, []string{"DATABASE_URL=" + secretARN + "DATABASE_URL-AbCdEf"}, secrets(migrate.Secrets))
	assert.Empty(t, migrate.Environment, "no $PORT for a sidecar")

	proxy := td.ContainerDefinitions[2]
	assert.True(t, aws.ToBool(proxy.Essential))
	assert.Equal(t, []string{"migrate:COMPLETE"}, deps(proxy.DependsOn))
	assert.Equal(t, int32(256), proxy.Cpu)
	assert.Equal(t, int32(512), aws.ToInt32(proxy.Memory))

	stats := td.ContainerDefinitions[3]
	assert.False(t, aws.ToBool(stats.Essential))
	require.NotNil(t, stats.RestartPolicy, "a non-essential sidecar is restarted alone, as on the local engine")
	assert.True(t, aws.ToBool(stats.RestartPolicy.Enabled))
	assert.Equal(t, []string{"PORT=9102"}, pairs(stats.Environment))

	reserved := int32(0)
	for _, c := range td.ContainerDefinitions {
		reserved += aws.ToInt32(c.MemoryReservation)
	}
	assert.LessOrEqual(t, reserved, int32(2048), "reservations fit the task")
}

func TestTaskDefinitionNeverHoldsSecretValues(t *testing.T) {
	in := shopInput(t)
	// Whatever the spec's env says, a secret's name is only ever a
	// reference; the values live in Secrets Manager.
	td, err := TaskDefinition(in)
	require.NoError(t, err)
	for _, c := range td.ContainerDefinitions {
		for _, s := range c.Secrets {
			assert.True(t, strings.HasPrefix(aws.ToString(s.ValueFrom), "arn:aws:secretsmanager:"), "valueFrom is an ARN: %s", aws.ToString(s.ValueFrom))
		}
		for _, kv := range c.Environment {
			assert.NotContains(t, []string{"DATABASE_URL", "STRIPE_KEY"}, aws.ToString(kv.Name), "a secret never becomes plain env")
		}
	}

	delete(in.SecretARNs, "STRIPE_KEY")
	_, err = TaskDefinition(in)
	require.ErrorIs(t, err, ErrMissingInput)
	assert.EqualError(t, err, "task definition input incomplete: no ARN for secret STRIPE_KEY; set it with berth secret set --env")
}

func TestTaskDefinitionPlatforms(t *testing.T) {
	tests := []struct {
		specPlatform, imagePlatform string
		want                        types.CPUArchitecture
	}{
		{"", "", types.CPUArchitectureX8664},
		{"", "linux/arm64", types.CPUArchitectureArm64},
		{"linux/amd64", "linux/arm64", types.CPUArchitectureX8664},
		{"linux/arm64", "", types.CPUArchitectureArm64},
		{"linux/arm64/v8", "", types.CPUArchitectureArm64},
	}
	for _, tc := range tests {
		t.Run(tc.specPlatform+" built "+tc.imagePlatform, func(t *testing.T) {
			in := workerInput(t)
			in.Service.Platform, in.Platform = tc.specPlatform, tc.imagePlatform
			td, err := TaskDefinition(in)
			require.NoError(t, err)
			assert.Equal(t, tc.want, td.RuntimePlatform.CpuArchitecture)
			assert.Equal(t, types.OSFamilyLinux, td.RuntimePlatform.OperatingSystemFamily)
		})
	}
}

func workerInput(t testing.TB) Input {
	t.Helper()
	sp := parse(t, shopSpec)
	return Input{App: "shop", Env: "prod", Service: sp.Services["worker"], Revision: 1, Image: registry + "shop-worker" + digest, LogGroup: shopLogGrp, Region: "eu-west-1", ExecutionRoleARN: execRole}
}

func TestTaskDefinitionWorker(t *testing.T) {
	td, err := TaskDefinition(workerInput(t))
	require.NoError(t, err)
	assert.Equal(t, "shop-prod-worker", aws.ToString(td.Family))
	assert.Equal(t, "256", aws.ToString(td.Cpu), "nothing set: the smallest task")
	assert.Equal(t, "512", aws.ToString(td.Memory))
	assert.Nil(t, td.TaskRoleArn, "no task role unless one is given")
	require.Len(t, td.ContainerDefinitions, 1)
	w := td.ContainerDefinitions[0]
	assert.Empty(t, w.PortMappings)
	assert.Empty(t, w.Environment, "a worker has no $PORT")
	assert.Equal(t, int32(0), w.Cpu)
	assert.Nil(t, w.Memory)
	assert.Equal(t, int32(512), aws.ToInt32(w.MemoryReservation))
}

func TestTaskDefinitionRefuses(t *testing.T) {
	in := workerInput(t)
	in.Image = ""
	_, err := TaskDefinition(in)
	assert.ErrorIs(t, err, ErrMissingInput)

	in = shopInput(t)
	delete(in.SidecarImages, "proxy")
	_, err = TaskDefinition(in)
	assert.EqualError(t, err, "task definition input incomplete: no image for sidecar proxy of service web")

	in = workerInput(t)
	in.Service.CPU, in.Service.Memory = 0.25, 3<<30
	_, err = TaskDefinition(in)
	var se *spec.Error
	require.True(t, errors.As(err, &se))
	assert.Equal(t, "services.worker.memory", se.Field)
}

func TestFamily(t *testing.T) {
	assert.Equal(t, "shop-prod-web", Family("shop", "prod", "web"))
	assert.Equal(t, "a-b-prod-c", Family("a.b", "prod", "c"))
	assert.Len(t, Family(strings.Repeat("a", 200), "prod", strings.Repeat("b", 200)), 255)
}

func TestCondition(t *testing.T) {
	assert.Equal(t, types.ContainerConditionStart, Condition(spec.ConditionStart))
	assert.Equal(t, types.ContainerConditionHealthy, Condition(spec.ConditionHealthy))
	assert.Equal(t, types.ContainerConditionComplete, Condition(spec.ConditionComplete))
	assert.Equal(t, types.ContainerConditionSuccess, Condition(spec.ConditionSuccess))
}

func tags(ts []types.Tag) map[string]string {
	out := map[string]string{}
	for _, t := range ts {
		out[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return out
}

func pairs(kvs []types.KeyValuePair) []string {
	var out []string
	for _, kv := range kvs {
		out = append(out, aws.ToString(kv.Name)+"="+aws.ToString(kv.Value))
	}
	return out
}

func secrets(ss []types.Secret) []string {
	var out []string
	for _, s := range ss {
		out = append(out, aws.ToString(s.Name)+"="+aws.ToString(s.ValueFrom))
	}
	return out
}

func deps(ds []types.ContainerDependency) []string {
	var out []string
	for _, d := range ds {
		out = append(out, aws.ToString(d.ContainerName)+":"+string(d.Condition))
	}
	return out
}
