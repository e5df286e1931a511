package awstest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/apprunner"
	"github.com/aws/aws-sdk-go-v2/service/apprunner/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/aws/awstest"
	"github.com/berth-dev/berth/internal/aws/clients"
)

const (
	arImageA = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop-web@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	arImageB = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop-web@sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	arRole   = "arn:aws:iam::123456789012:role/service-role/AppRunnerECRAccessRole"
)

// appRunnerWorld is the fake behind a proxy, and an SDK client on it.
func appRunnerWorld(t *testing.T) (*awstest.Proxy, *awstest.AppRunner, *sdk.Client) {
	t.Helper()
	p := awstest.StartProxy(t, awstest.MotoEndpoint(t), "")
	awstest.UseEndpoint(t, p.URL)
	fake := awstest.SimulateAppRunner(t, p)
	c, err := clients.Load(context.Background(), "")
	require.NoError(t, err)
	return p, fake, c.AppRunner
}

// settle polls DescribeService until the service's operation has ended.
func settleAR(t *testing.T, api *sdk.Client, arn string) *types.Service {
	t.Helper()
	for i := 0; i < 50; i++ {
		d, err := api.DescribeService(context.Background(), &sdk.DescribeServiceInput{ServiceArn: aws.String(arn)})
		require.NoError(t, err)
		if d.Service.Status != types.ServiceStatusOperationInProgress {
			return d.Service
		}
	}
	t.Fatalf("service %s still in progress after 50 polls", arn)
	return nil
}

func createARService(t *testing.T, api *sdk.Client, name string) string {
	t.Helper()
	out, err := api.CreateService(context.Background(), &sdk.CreateServiceInput{
		ServiceName: aws.String(name),
		SourceConfiguration: &types.SourceConfiguration{
			ImageRepository: &types.ImageRepository{
				ImageIdentifier: aws.String(arImageA), ImageRepositoryType: types.ImageRepositoryTypeEcr,
				ImageConfiguration: &types.ImageConfiguration{
					Port: aws.String("8080"), StartCommand: aws.String("./server"),
					RuntimeEnvironmentVariables: map[string]string{"A": "1"},
					RuntimeEnvironmentSecrets:   map[string]string{"DB": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf"},
				},
			},
			AuthenticationConfiguration: &types.AuthenticationConfiguration{AccessRoleArn: aws.String(arRole)},
		},
		InstanceConfiguration:    &types.InstanceConfiguration{Cpu: aws.String("1 vCPU"), Memory: aws.String("2048")},
		HealthCheckConfiguration: &types.HealthCheckConfiguration{Protocol: types.HealthCheckProtocolHttp, Path: aws.String("/healthz"), Interval: aws.Int32(5)},
		ObservabilityConfiguration: &types.ServiceObservabilityConfiguration{ObservabilityEnabled: true,
			ObservabilityConfigurationArn: aws.String("arn:aws:apprunner:eu-west-1:123456789012:observabilityconfiguration/t/1/0123456789abcdef0123456789abcdef")},
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("shop")}},
	})
	require.NoError(t, err)
	assert.Equal(t, types.ServiceStatusOperationInProgress, out.Service.Status)
	return aws.ToString(out.Service.ServiceArn)
}

// TestAppRunnerFake: the fake's services go through App Runner's states as
// the SDK sees them: an operation in progress for the set number of polls,
// a failed deployment rolled back to the previous image, pause and resume,
// refusals while busy, not-found errors the SDK types.
func TestAppRunnerFake(t *testing.T) {
	ctx := context.Background()
	_, fake, api := appRunnerWorld(t)
	fake.SetPolls(2)
	arn := createARService(t, api, "shop-web")
	for i := 0; i < 2; i++ {
		d, err := api.DescribeService(ctx, &sdk.DescribeServiceInput{ServiceArn: aws.String(arn)})
		require.NoError(t, err)
		require.Equal(t, types.ServiceStatusOperationInProgress, d.Service.Status, "poll %d", i+1)
	}
	_, err := api.PauseService(ctx, &sdk.PauseServiceInput{ServiceArn: aws.String(arn)})
	var busy *types.InvalidStateException
	require.ErrorAs(t, err, &busy)
	svc := settleAR(t, api, arn)
	assert.Equal(t, types.ServiceStatusRunning, svc.Status)
	assert.Regexp(t, `^[0-9a-f]{10}\.eu-west-1\.awsapprunner\.com$`, aws.ToString(svc.ServiceUrl))
	assert.Equal(t, "2 GB", aws.ToString(svc.InstanceConfiguration.Memory), "App Runner answers sizes in GB")
	assert.Equal(t, "DefaultConfiguration", aws.ToString(svc.AutoScalingConfigurationSummary.AutoScalingConfigurationName))

	// A failed deployment: rolled back, the previous image serves.
	fake.FailNextDeployment("")
	up, err := api.UpdateService(ctx, &sdk.UpdateServiceInput{ServiceArn: aws.String(arn), SourceConfiguration: &types.SourceConfiguration{
		ImageRepository: &types.ImageRepository{ImageIdentifier: aws.String(arImageB), ImageRepositoryType: types.ImageRepositoryTypeEcr}}})
	require.NoError(t, err)
	svc = settleAR(t, api, arn)
	assert.Equal(t, arImageA, aws.ToString(svc.SourceConfiguration.ImageRepository.ImageIdentifier))
	ops, err := api.ListOperations(ctx, &sdk.ListOperationsInput{ServiceArn: aws.String(arn)})
	require.NoError(t, err)
	require.Len(t, ops.OperationSummaryList, 2)
	assert.Equal(t, aws.ToString(up.OperationId), aws.ToString(ops.OperationSummaryList[0].Id))
	assert.Equal(t, types.OperationStatusRollbackSucceeded, ops.OperationSummaryList[0].Status)
	assert.Equal(t, types.OperationTypeCreateService, ops.OperationSummaryList[1].Type)
	ops, err = api.ListOperations(ctx, &sdk.ListOperationsInput{ServiceArn: aws.String(arn), MaxResults: aws.Int32(1)})
	require.NoError(t, err)
	require.Len(t, ops.OperationSummaryList, 1, "newest first, MaxResults of them")
	assert.Equal(t, aws.ToString(up.OperationId), aws.ToString(ops.OperationSummaryList[0].Id))

	// The same update again succeeds; what it leaves out stays.
	_, err = api.UpdateService(ctx, &sdk.UpdateServiceInput{ServiceArn: aws.String(arn), SourceConfiguration: &types.SourceConfiguration{
		ImageRepository: &types.ImageRepository{ImageIdentifier: aws.String(arImageB), ImageRepositoryType: types.ImageRepositoryTypeEcr}}})
	require.NoError(t, err)
	svc = settleAR(t, api, arn)
	assert.Equal(t, arImageB, aws.ToString(svc.SourceConfiguration.ImageRepository.ImageIdentifier))
	assert.Equal(t, "/healthz", aws.ToString(svc.HealthCheckConfiguration.Path))

	_, err = api.PauseService(ctx, &sdk.PauseServiceInput{ServiceArn: aws.String(arn)})
	require.NoError(t, err)
	assert.Equal(t, types.ServiceStatusPaused, settleAR(t, api, arn).Status)
	_, err = api.UpdateService(ctx, &sdk.UpdateServiceInput{ServiceArn: aws.String(arn)})
	require.ErrorAs(t, err, &busy, "a paused service is not updated")
	_, err = api.ResumeService(ctx, &sdk.ResumeServiceInput{ServiceArn: aws.String(arn)})
	require.NoError(t, err)
	assert.Equal(t, types.ServiceStatusRunning, settleAR(t, api, arn).Status)

	_, err = api.DescribeService(ctx, &sdk.DescribeServiceInput{ServiceArn: aws.String(strings.Replace(arn, "shop-web", "nosuch", 1))})
	var nf *types.ResourceNotFoundException
	require.ErrorAs(t, err, &nf)
	assert.Contains(t, nf.ErrorMessage(), "not found")
	_, err = api.UpdateService(ctx, &sdk.UpdateServiceInput{ServiceArn: aws.String(arn), InstanceConfiguration: &types.InstanceConfiguration{Cpu: aws.String("3 vCPU")}})
	var bad *types.InvalidRequestException
	require.ErrorAs(t, err, &bad)

	// A client of another region gets that region's ARNs and URLs.
	east := sdk.NewFromConfig(func() aws.Config {
		c, err := clients.Load(ctx, "us-east-1")
		require.NoError(t, err)
		return c.Config
	}())
	other := createARService(t, east, "shop-east")
	assert.Contains(t, other, "arn:aws:apprunner:us-east-1:123456789012:service/shop-east/")
	assert.Contains(t, aws.ToString(settleAR(t, east, other).ServiceUrl), ".us-east-1.awsapprunner.com")
}

// botocoreModel loads botocore's App Runner model (awstest.BotocoreModel),
// its numbers kept as written.
func botocoreModel(t *testing.T) map[string]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(awstest.BotocoreModel(t, "apprunner", "2020-05-15")))
	d.UseNumber()
	var m map[string]any
	require.NoError(t, d.Decode(&m))
	return m
}

// modelContradictions are the model's shapes whose pattern contradicts
// their own length limits, and what the fake follows instead.
var modelContradictions = map[string]string{
	"ServiceId": "min and max 32 with a 36-character UUID pattern: App Runner's service IDs are 32 hex digits, as its ARNs end (checked by length)",
}

// modelCheck checks JSON values against the model's shapes.
type modelCheck struct {
	shapes map[string]any
	errs   []string
}

func (mc *modelCheck) fail(path, format string, a ...any) {
	mc.errs = append(mc.errs, path+": "+fmt.Sprintf(format, a...))
}

func (mc *modelCheck) check(path string, v any, shapeName string) {
	shape, _ := mc.shapes[shapeName].(map[string]any)
	if shape == nil {
		mc.fail(path, "no shape %s in the model", shapeName)
		return
	}
	switch shape["type"] {
	case "structure":
		obj, ok := v.(map[string]any)
		if !ok {
			mc.fail(path, "%s is a structure, the fake wrote %T", shapeName, v)
			return
		}
		members, _ := shape["members"].(map[string]any)
		for k, x := range obj {
			m, ok := members[k].(map[string]any)
			if !ok {
				mc.fail(path, "%s has no member %s", shapeName, k)
				continue
			}
			mc.check(path+"."+k, x, m["shape"].(string))
		}
		req, _ := shape["required"].([]any)
		for _, r := range req {
			if _, ok := obj[r.(string)]; !ok {
				mc.fail(path, "%s requires %s; the fake left it out", shapeName, r)
			}
		}
	case "list":
		list, ok := v.([]any)
		if !ok {
			mc.fail(path, "%s is a list, the fake wrote %T", shapeName, v)
			return
		}
		member := shape["member"].(map[string]any)["shape"].(string)
		for i, x := range list {
			mc.check(fmt.Sprintf("%s[%d]", path, i), x, member)
		}
	case "map":
		obj, ok := v.(map[string]any)
		if !ok {
			mc.fail(path, "%s is a map, the fake wrote %T", shapeName, v)
			return
		}
		value := shape["value"].(map[string]any)["shape"].(string)
		for k, x := range obj {
			mc.check(path+"["+k+"]", x, value)
		}
	case "string":
		s, ok := v.(string)
		if !ok {
			mc.fail(path, "%s is a string, the fake wrote %T", shapeName, v)
			return
		}
		if enum, ok := shape["enum"].([]any); ok {
			found := false
			for _, e := range enum {
				found = found || e == s
			}
			if !found {
				mc.fail(path, "%q is not one of %s's values %v", s, shapeName, enum)
			}
		}
		if p, ok := shape["pattern"].(string); ok && modelContradictions[shapeName] == "" {
			if re, err := regexp.Compile("^(?:" + p + ")$"); err == nil && !re.MatchString(s) {
				mc.fail(path, "%q does not match %s's pattern %s", s, shapeName, p)
			}
		}
		if n, ok := shape["max"].(json.Number); ok {
			if max, _ := n.Int64(); int64(len(s)) > max {
				mc.fail(path, "%q is longer than %s's %d", s, shapeName, max)
			}
		}
		if n, ok := shape["min"].(json.Number); ok {
			if min, _ := n.Int64(); int64(len(s)) < min {
				mc.fail(path, "%q is shorter than %s's %d", s, shapeName, min)
			}
		}
	case "integer", "long":
		n, ok := v.(json.Number)
		if _, err := n.Int64(); !ok || err != nil {
			mc.fail(path, "%s is an integer, the fake wrote %v", shapeName, v)
		}
	case "double", "float":
		if _, ok := v.(json.Number); !ok {
			mc.fail(path, "%s is a number, the fake wrote %T", shapeName, v)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			mc.fail(path, "%s is a boolean, the fake wrote %T", shapeName, v)
		}
	case "timestamp":
		// awsJson1_0 writes timestamps as epoch seconds.
		if _, ok := v.(json.Number); !ok {
			mc.fail(path, "%s is a timestamp (epoch seconds), the fake wrote %T", shapeName, v)
		}
	default:
		mc.fail(path, "shape %s of type %v is not checked", shapeName, shape["type"])
	}
}

// TestAppRunnerFakeMatchesModel: every operation the fake serves exists in
// botocore's App Runner model, and every answer it gave in a run through
// all of them (errors included) has only members of the operation's output
// (or error) shape, of the model's types, enum values and patterns, with
// every required member.
func TestAppRunnerFakeMatchesModel(t *testing.T) {
	model := botocoreModel(t)
	ctx := context.Background()
	_, fake, api := appRunnerWorld(t)
	fake.SetPolls(1)

	// Every operation, and the errors App Runner documents for them.
	asc, err := api.CreateAutoScalingConfiguration(ctx, &sdk.CreateAutoScalingConfigurationInput{
		AutoScalingConfigurationName: aws.String("shop-scaling"), MinSize: aws.Int32(2), MaxSize: aws.Int32(5), MaxConcurrency: aws.Int32(80),
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("shop")}}})
	require.NoError(t, err)
	arn := createARService(t, api, "shop-web")
	_, err = api.ListServices(ctx, &sdk.ListServicesInput{})
	require.NoError(t, err)
	_, err = api.UpdateService(ctx, &sdk.UpdateServiceInput{ServiceArn: aws.String(arn)})
	require.Error(t, err, "busy")
	settleAR(t, api, arn)
	_, err = api.UpdateService(ctx, &sdk.UpdateServiceInput{ServiceArn: aws.String(arn),
		AutoScalingConfigurationArn: asc.AutoScalingConfiguration.AutoScalingConfigurationArn,
		InstanceConfiguration:       &types.InstanceConfiguration{Cpu: aws.String("2048"), Memory: aws.String("4 GB")},
		HealthCheckConfiguration:    &types.HealthCheckConfiguration{Protocol: types.HealthCheckProtocolTcp, Timeout: aws.Int32(3)},
		ObservabilityConfiguration:  &types.ServiceObservabilityConfiguration{ObservabilityEnabled: false},
		SourceConfiguration: &types.SourceConfiguration{ImageRepository: &types.ImageRepository{
			ImageIdentifier: aws.String(arImageB), ImageRepositoryType: types.ImageRepositoryTypeEcr,
			ImageConfiguration: &types.ImageConfiguration{Port: aws.String("9090")}}}})
	require.NoError(t, err)
	settleAR(t, api, arn)
	fake.FailNextDeployment("")
	_, err = api.StartDeployment(ctx, &sdk.StartDeploymentInput{ServiceArn: aws.String(arn)})
	require.NoError(t, err)
	settleAR(t, api, arn)
	_, err = api.UpdateService(ctx, &sdk.UpdateServiceInput{ServiceArn: aws.String(arn), InstanceConfiguration: &types.InstanceConfiguration{Memory: aws.String("5 GB")}})
	require.Error(t, err, "invalid memory")
	_, err = api.DescribeAutoScalingConfiguration(ctx, &sdk.DescribeAutoScalingConfigurationInput{AutoScalingConfigurationArn: asc.AutoScalingConfiguration.AutoScalingConfigurationArn})
	require.NoError(t, err)
	_, err = api.TagResource(ctx, &sdk.TagResourceInput{ResourceArn: aws.String(arn), Tags: []types.Tag{{Key: aws.String("berth.app"), Value: aws.String("shop")}}})
	require.NoError(t, err)
	tags, err := api.ListTagsForResource(ctx, &sdk.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
	require.NoError(t, err)
	assert.Len(t, tags.Tags, 2)
	_, err = api.PauseService(ctx, &sdk.PauseServiceInput{ServiceArn: aws.String(arn)})
	require.NoError(t, err)
	settleAR(t, api, arn)
	_, err = api.ResumeService(ctx, &sdk.ResumeServiceInput{ServiceArn: aws.String(arn)})
	require.NoError(t, err)
	settleAR(t, api, arn)
	_, err = api.ListOperations(ctx, &sdk.ListOperationsInput{ServiceArn: aws.String(arn)})
	require.NoError(t, err)
	_, err = api.DeleteService(ctx, &sdk.DeleteServiceInput{ServiceArn: aws.String(arn)})
	require.NoError(t, err)
	_, err = api.DescribeService(ctx, &sdk.DescribeServiceInput{ServiceArn: aws.String(arn)})
	require.NoError(t, err)
	_, err = api.DescribeService(ctx, &sdk.DescribeServiceInput{ServiceArn: aws.String(arn)})
	require.NoError(t, err)
	_, err = api.ResumeService(ctx, &sdk.ResumeServiceInput{ServiceArn: aws.String(arn)})
	require.Error(t, err, "deleted")

	ops := model["operations"].(map[string]any)
	mc := &modelCheck{shapes: model["shapes"].(map[string]any)}
	for _, op := range awstest.AppRunnerOperations {
		if ops[op] == nil {
			mc.fail(op, "the fake serves an operation the model does not have")
		}
	}
	seen := map[string]bool{}
	statuses := map[string]bool{}
	for _, a := range fake.Answers() {
		seen[a.Action] = true
		op, _ := ops[a.Action].(map[string]any)
		if op == nil {
			mc.fail(a.Action, "answered, but not in the model")
			continue
		}
		d := json.NewDecoder(bytes.NewReader(a.Body))
		d.UseNumber()
		var body map[string]any
		require.NoError(t, d.Decode(&body), "%s answer %s", a.Action, a.Body)
		if a.Status != 200 {
			code := body["__type"].(string)
			code = code[strings.LastIndex(code, "#")+1:]
			known := false
			for _, e := range op["errors"].([]any) {
				known = known || e.(map[string]any)["shape"] == code
			}
			if !known {
				mc.fail(a.Action, "error %s is not one the model lists for it", code)
			}
			delete(body, "__type")
			mc.check(a.Action+" error", body, code)
			statuses[a.Action+" "+code] = true
			continue
		}
		out := op["output"].(map[string]any)["shape"].(string)
		mc.check(a.Action, body, out)
		if svc, ok := body["Service"].(map[string]any); ok {
			statuses["Service.Status "+svc["Status"].(string)] = true
		}
	}
	for _, op := range awstest.AppRunnerOperations {
		assert.True(t, seen[op], "the run did not exercise %s", op)
	}
	var got []string
	for s := range statuses {
		got = append(got, s)
	}
	sort.Strings(got)
	t.Logf("checked %d answers; errors and states seen: %v", len(fake.Answers()), got)
	assert.Empty(t, mc.errs, "the fake's answers against botocore's model:\n%s", strings.Join(mc.errs, "\n"))
}

// TestAppRunnerFakeWithAWSCLI: the aws CLI, a second client with its own
// parser (botocore), reads and changes the fake's services.
func TestAppRunnerFakeWithAWSCLI(t *testing.T) {
	cli, err := exec.LookPath("aws")
	if err != nil {
		if os.Getenv(awstest.EnvRequireMoto) != "" {
			t.Fatalf("aws CLI: %v", err)
		}
		t.Skipf("the aws CLI is not installed: %v", err)
	}
	p, fake, api := appRunnerWorld(t)
	fake.SetPolls(1)
	arn := createARService(t, api, "shop-web")
	settleAR(t, api, arn)

	aws := func(args ...string) (map[string]any, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, cli, append([]string{"apprunner"}, append(args, "--endpoint-url", p.URL, "--region", awstest.Region, "--output", "json")...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "AWS_PROFILE=") { // the CLI takes "" for a profile's name
				cmd.Env = append(cmd.Env, kv)
			}
		}
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("%w: %s", err, stderr.String())
		}
		var v map[string]any
		if len(bytes.TrimSpace(out)) == 0 {
			return v, nil
		}
		return v, json.Unmarshal(out, &v)
	}
	d, err := aws("describe-service", "--service-arn", arn)
	require.NoError(t, err)
	svc := d["Service"].(map[string]any)
	assert.Equal(t, "RUNNING", svc["Status"])
	assert.Regexp(t, `\.eu-west-1\.awsapprunner\.com$`, svc["ServiceUrl"])
	ir := svc["SourceConfiguration"].(map[string]any)["ImageRepository"].(map[string]any)
	assert.Equal(t, arImageA, ir["ImageIdentifier"])
	assert.Equal(t, "1 vCPU", svc["InstanceConfiguration"].(map[string]any)["Cpu"])
	assert.InDelta(t, float64(time.Now().Unix()), svc["CreatedAt"], 60, "botocore reads the timestamps")

	// The CLI deploys an image; the SDK sees it serve.
	_, err = aws("update-service", "--service-arn", arn, "--source-configuration",
		`{"ImageRepository":{"ImageIdentifier":"`+arImageB+`","ImageRepositoryType":"ECR"}}`)
	require.NoError(t, err)
	assert.Equal(t, arImageB, settleImage(t, api, arn))
	l, err := aws("list-operations", "--service-arn", arn)
	require.NoError(t, err)
	ops := l["OperationSummaryList"].([]any)
	require.Len(t, ops, 2)
	assert.Equal(t, "UPDATE_SERVICE", ops[0].(map[string]any)["Type"])
	assert.Equal(t, "SUCCEEDED", ops[0].(map[string]any)["Status"])
	s, err := aws("list-services")
	require.NoError(t, err)
	assert.Len(t, s["ServiceSummaryList"], 1)

	_, err = aws("describe-service", "--service-arn", strings.Replace(arn, "shop-web", "nosuch", 1))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "ResourceNotFoundException")
}

func settleImage(t *testing.T, api *sdk.Client, arn string) string {
	t.Helper()
	return aws.ToString(settleAR(t, api, arn).SourceConfiguration.ImageRepository.ImageIdentifier)
}
