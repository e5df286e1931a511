package awsenv

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const shapesYAML = `app: APP
environments:
  prod:
    engine: aws
services:
  web:
    image: IMAGE
    port: 8080
    instances: 2
    cpu: 0.5
    memory: 1GiB
    platform: linux/amd64
    env: {GREETING: hello}
    secrets: [DATABASE_URL]
    domains: [shop.example.com]
    routes: [{path: /api, service: api}]
    drain: 45s
    health:
      path: /health
      interval: 10s
      timeout: 3s
      healthy: 3
      unhealthy: 4
  api:
    image: IMAGE
    port: 9090
`

const secretValue = "postgres://u:hunter2@db/shop"

// What berth sent, read back from moto: the task definition, the ECS
// services, the target groups, the listener rules, the security groups,
// and the berth.app/berth.env tags on every resource it made.
func TestRequestShapesOnAWS(t *testing.T) {
	a := newAWSApp(t, shapesYAML)
	ctx := context.Background()
	e := a.env(Options{})
	_, err := e.SecretSet(ctx, "web", map[string]string{"DATABASE_URL": secretValue})
	require.NoError(t, err)
	res, msgs := a.deploy(e)
	require.True(t, res.OK, "%s\n%s", res.Error, phases(msgs))
	app := a.sp.App
	in, err := e.findInfra(ctx)
	require.NoError(t, err)
	wantTags := map[string]string{TagApp: app, TagEnv: "prod"}

	// The task definition.
	revs, err := e.Revisions(ctx, "web")
	require.NoError(t, err)
	require.Len(t, revs, 1)
	tdOut, err := a.c.ECS.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{
		TaskDefinition: aws.String(revs[0].ImageID), Include: []ecstypes.TaskDefinitionField{ecstypes.TaskDefinitionFieldTags},
	})
	require.NoError(t, err)
	td := tdOut.TaskDefinition
	assert.Equal(t, app+"-prod-web", aws.ToString(td.Family))
	assert.Equal(t, "512", aws.ToString(td.Cpu))
	assert.Equal(t, "1024", aws.ToString(td.Memory))
	assert.Equal(t, ecstypes.NetworkModeAwsvpc, td.NetworkMode)
	assert.Equal(t, []ecstypes.Compatibility{ecstypes.CompatibilityFargate}, td.RequiresCompatibilities)
	require.NotNil(t, td.RuntimePlatform)
	assert.Equal(t, ecstypes.CPUArchitectureX8664, td.RuntimePlatform.CpuArchitecture)
	assert.Equal(t, ecstypes.OSFamilyLinux, td.RuntimePlatform.OperatingSystemFamily)
	require.Len(t, td.ContainerDefinitions, 1)
	c := td.ContainerDefinitions[0]
	assert.Equal(t, "web", aws.ToString(c.Name))
	assert.Regexp(t, `^`+a.proxy.Registry()+`/berth-`+app+`-prod-web@sha256:[0-9a-f]{64}$`, aws.ToString(c.Image))
	require.Len(t, c.PortMappings, 1)
	assert.Equal(t, int32(8080), aws.ToInt32(c.PortMappings[0].ContainerPort))
	assert.Equal(t, ecstypes.TransportProtocolTcp, c.PortMappings[0].Protocol)
	require.Len(t, c.Secrets, 1)
	assert.Equal(t, "DATABASE_URL", aws.ToString(c.Secrets[0].Name))
	assert.Regexp(t, `^arn:aws:secretsmanager:eu-west-1:\d+:secret:berth/prod/`+app+`/web/DATABASE_URL`, aws.ToString(c.Secrets[0].ValueFrom))
	env := map[string]string{}
	for _, kv := range c.Environment {
		env[aws.ToString(kv.Name)] = aws.ToString(kv.Value)
	}
	assert.Equal(t, "hello", env["GREETING"])
	assert.Equal(t, "8080", env["PORT"])
	require.NotNil(t, c.LogConfiguration)
	assert.Equal(t, ecstypes.LogDriverAwslogs, c.LogConfiguration.LogDriver)
	assert.Equal(t, "/berth/"+app+"/prod", c.LogConfiguration.Options["awslogs-group"])
	assert.Equal(t, "eu-west-1", c.LogConfiguration.Options["awslogs-region"])
	assert.NotEmpty(t, c.LogConfiguration.Options["awslogs-stream-prefix"])
	whole, err := json.Marshal(tdOut)
	require.NoError(t, err)
	assert.NotContains(t, string(whole), "hunter2", "a secret's value is in the task definition")
	assert.Subset(t, ecsTagMap(tdOut.Tags), map[string]string{TagApp: app, TagEnv: "prod", TagService: "web", TagRevision: "1"})
	for _, m := range msgs {
		assert.NotContains(t, m.Text, "hunter2", "a secret's value is in berth's output")
	}

	// The ECS services: slot a of each runs, behind slot a's target group.
	tgArn := map[string]string{}
	tgOut, err := a.c.ELB.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{LoadBalancerArn: nil,
		Names: []string{e.targetGroupName("web", SlotA), e.targetGroupName("web", SlotB), e.targetGroupName("api", SlotA), e.targetGroupName("api", SlotB)}})
	require.NoError(t, err)
	require.Len(t, tgOut.TargetGroups, 4)
	for _, g := range tgOut.TargetGroups {
		tgArn[aws.ToString(g.TargetGroupName)] = aws.ToString(g.TargetGroupArn)
	}
	for _, tc := range []struct {
		svc     string
		port    int32
		desired int32
	}{{"web", 8080, 2}, {"api", 9090, 1}} {
		out, err := a.c.ECS.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(in.Cluster),
			Services: []string{e.ecsServiceName(tc.svc, SlotA)}, Include: []ecstypes.ServiceField{ecstypes.ServiceFieldTags}})
		require.NoError(t, err)
		require.Len(t, out.Services, 1)
		s := out.Services[0]
		assert.Equal(t, ecstypes.LaunchTypeFargate, s.LaunchType, tc.svc)
		assert.Equal(t, tc.desired, s.DesiredCount, tc.svc)
		require.NotNil(t, s.NetworkConfiguration, tc.svc)
		vpc := s.NetworkConfiguration.AwsvpcConfiguration
		assert.ElementsMatch(t, in.Subnets, vpc.Subnets, tc.svc)
		assert.Equal(t, []string{in.SvcGroup}, vpc.SecurityGroups, tc.svc)
		require.Len(t, s.LoadBalancers, 1, tc.svc)
		assert.Equal(t, tgArn[e.targetGroupName(tc.svc, SlotA)], aws.ToString(s.LoadBalancers[0].TargetGroupArn), tc.svc)
		assert.Equal(t, tc.svc, aws.ToString(s.LoadBalancers[0].ContainerName))
		assert.Equal(t, tc.port, aws.ToInt32(s.LoadBalancers[0].ContainerPort))
		tags, err := a.c.ECS.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: s.ServiceArn})
		require.NoError(t, err)
		assert.Subset(t, ecsTagMap(tags.Tags), map[string]string{TagApp: app, TagEnv: "prod", TagService: tc.svc, TagSlot: "a"})
	}

	// The target groups: the health check and draining from the spec.
	for _, g := range tgOut.TargetGroups {
		n := aws.ToString(g.TargetGroupName)
		assert.Equal(t, "ip", string(g.TargetType), n)
		assert.Equal(t, "HTTP", string(g.Protocol), n)
		if !strings.Contains(n, "-web-") {
			assert.Equal(t, "/", aws.ToString(g.HealthCheckPath), n)
			assert.Equal(t, "200-499", aws.ToString(g.Matcher.HttpCode), n)
			continue
		}
		assert.Equal(t, int32(8080), aws.ToInt32(g.Port), n)
		assert.Equal(t, "/health", aws.ToString(g.HealthCheckPath), n)
		assert.Equal(t, "200-399", aws.ToString(g.Matcher.HttpCode), n)
		assert.Equal(t, int32(10), aws.ToInt32(g.HealthCheckIntervalSeconds), n)
		assert.Equal(t, int32(3), aws.ToInt32(g.HealthCheckTimeoutSeconds), n)
		assert.Equal(t, int32(3), aws.ToInt32(g.HealthyThresholdCount), n)
		assert.Equal(t, int32(4), aws.ToInt32(g.UnhealthyThresholdCount), n)
		attrs, err := a.c.ELB.DescribeTargetGroupAttributes(ctx, &elb.DescribeTargetGroupAttributesInput{TargetGroupArn: g.TargetGroupArn})
		require.NoError(t, err)
		got := map[string]string{}
		for _, at := range attrs.Attributes {
			got[aws.ToString(at.Key)] = aws.ToString(at.Value)
		}
		assert.Equal(t, "45", got["deregistration_delay.timeout_seconds"], n)
	}

	// The listener rules: hosts, the route's paths, weights 100/0.
	live, _, err := e.rules(ctx, in)
	require.NoError(t, err)
	keys := make([]string, 0, len(live))
	for k := range live {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	assert.Equal(t, []string{"default", "host:api", "host:web", "route:web:/api"}, keys)
	want := map[string]struct {
		service string
		hosts   []string
		paths   []string
	}{
		"host:web":       {"web", []string{"web." + app + ".*", "shop.example.com"}, nil},
		"host:api":       {"api", []string{"api." + app + ".*"}, nil},
		"route:web:/api": {"api", []string{"web." + app + ".*", "shop.example.com"}, []string{"/api", "/api/*"}},
		"default":        {"web", nil, []string{"/*"}},
	}
	var ruleArns []string
	for k, w := range want {
		r := live[k]
		ruleArns = append(ruleArns, r.ARN)
		assert.Equal(t, w.service, r.Service, k)
		out, err := a.c.ELB.DescribeRules(ctx, &elb.DescribeRulesInput{RuleArns: []string{r.ARN}})
		require.NoError(t, err)
		var hosts, paths []string
		for _, c := range out.Rules[0].Conditions {
			switch aws.ToString(c.Field) {
			case "host-header":
				hosts = append(hosts, c.HostHeaderConfig.Values...)
			case "path-pattern":
				paths = append(paths, c.PathPatternConfig.Values...)
			}
		}
		assert.ElementsMatch(t, w.hosts, hosts, k)
		assert.ElementsMatch(t, w.paths, paths, k)
		weights := map[string]int32{}
		for _, g := range out.Rules[0].Actions[0].ForwardConfig.TargetGroups {
			weights[aws.ToString(g.TargetGroupArn)] = aws.ToInt32(g.Weight)
		}
		assert.Equal(t, map[string]int32{
			tgArn[e.targetGroupName(w.service, SlotA)]: 100,
			tgArn[e.targetGroupName(w.service, SlotB)]: 0,
		}, weights, k)
	}

	// The security groups: the ALB's open on 80 and 443; the services'
	// only to the ALB's group and to itself.
	sgs, err := a.c.EC2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{in.ALBGroup, in.SvcGroup}})
	require.NoError(t, err)
	require.Len(t, sgs.SecurityGroups, 2)
	for _, g := range sgs.SecurityGroups {
		tags := map[string]string{}
		for _, tg := range g.Tags {
			tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
		}
		assert.Subset(t, tags, wantTags, aws.ToString(g.GroupName))
		var rules []string
		for _, p := range g.IpPermissions {
			for _, r := range p.IpRanges {
				rules = append(rules, aws.ToString(p.IpProtocol)+" "+itoa(aws.ToInt32(p.FromPort))+"-"+itoa(aws.ToInt32(p.ToPort))+" from "+aws.ToString(r.CidrIp))
			}
			for _, r := range p.Ipv6Ranges {
				rules = append(rules, "from "+aws.ToString(r.CidrIpv6))
			}
			for _, r := range p.UserIdGroupPairs {
				rules = append(rules, aws.ToString(p.IpProtocol)+" from "+aws.ToString(r.GroupId))
			}
		}
		if aws.ToString(g.GroupId) == in.ALBGroup {
			assert.ElementsMatch(t, []string{"tcp 80-80 from 0.0.0.0/0", "tcp 443-443 from 0.0.0.0/0"}, rules, "the ALB's group")
		} else {
			assert.ElementsMatch(t, []string{"-1 from " + in.ALBGroup, "-1 from " + in.SvcGroup}, rules, "the services' group")
		}
	}
	lbs, err := a.c.ELB.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{LoadBalancerArns: []string{in.LB}})
	require.NoError(t, err)
	assert.Equal(t, []string{in.ALBGroup}, lbs.LoadBalancers[0].SecurityGroups)
	assert.Equal(t, "internet-facing", string(lbs.LoadBalancers[0].Scheme))

	// Tags on everything else berth made, read with each service's own
	// tagging call.
	elbArns := append([]string{in.LB, in.Listener}, ruleArns...)
	for _, arn := range tgArn {
		elbArns = append(elbArns, arn)
	}
	for i := 0; i < len(elbArns); i += 20 {
		out, err := a.c.ELB.DescribeTags(ctx, &elb.DescribeTagsInput{ResourceArns: elbArns[i:min(i+20, len(elbArns))]})
		require.NoError(t, err)
		for _, d := range out.TagDescriptions {
			tags := map[string]string{}
			for _, tg := range d.Tags {
				tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
			}
			assert.Subset(t, tags, wantTags, aws.ToString(d.ResourceArn))
		}
	}
	cl, err := a.c.ECS.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{in.Cluster}, Include: []ecstypes.ClusterField{ecstypes.ClusterFieldTags}})
	require.NoError(t, err)
	assert.Subset(t, ecsTagMap(cl.Clusters[0].Tags), wantTags, "cluster")
	lg, err := a.c.Logs.ListTagsLogGroup(ctx, &cloudwatchlogs.ListTagsLogGroupInput{LogGroupName: aws.String(in.LogGroup)})
	require.NoError(t, err)
	assert.Subset(t, lg.Tags, wantTags, "log group")
	for _, svc := range []string{"web", "api"} {
		repo, err := a.c.ECR.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"berth-" + app + "-prod-" + svc}})
		require.NoError(t, err)
		rt, err := a.c.ECR.ListTagsForResource(ctx, &ecr.ListTagsForResourceInput{ResourceArn: repo.Repositories[0].RepositoryArn})
		require.NoError(t, err)
		tags := map[string]string{}
		for _, tg := range rt.Tags {
			tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
		}
		assert.Subset(t, tags, wantTags, "ECR repository of "+svc)
	}
	sec, err := a.c.SecretsManager.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("berth/prod/" + app + "/web/DATABASE_URL")})
	require.NoError(t, err)
	tags := map[string]string{}
	for _, tg := range sec.Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	assert.Subset(t, tags, wantTags, "secret")
	role, err := a.c.IAM.ListRoleTags(ctx, &iam.ListRoleTagsInput{RoleName: aws.String(e.execRoleName())})
	require.NoError(t, err)
	tags = map[string]string{}
	for _, tg := range role.Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	assert.Subset(t, tags, wantTags, "execution role")
}

func ecsTagMap(ts []ecstypes.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range ts {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func itoa(n int32) string {
	b, _ := json.Marshal(n)
	return string(b)
}
