package awsenv

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/spec"
	"github.com/berth-dev/berth/internal/testutil"
)

const adoptedYAML = `app: APP
environments:
  prod:
    engine: aws
    cluster: CLUSTER
services:
  web:
    image: IMAGE
    port: 8080
    secrets: [TOKEN]
    health:
      path: /health
      interval: 5s
  worker:
    image: IMAGE
    command: [/testapp, work]
`

// sibling is another app on the same simulated AWS as a, from yaml (APP
// and IMAGE replaced as newAWSApp does).
func (a *awsApp) sibling(yaml string) *awsApp {
	a.t.Helper()
	b := *a
	yaml = strings.ReplaceAll(yaml, "APP", testutil.UniqueName(a.t, "s"))
	yaml = strings.ReplaceAll(yaml, "IMAGE", a.image)
	sp, err := spec.Parse("berth.yaml", []byte(yaml))
	require.NoError(a.t, err)
	b.sp = sp
	return &b
}

// destroy removes the app's services, rules, target groups, load
// balancer, security groups, log group, ECR repositories, secrets, role
// and state, and nothing else: another app in the same environment and
// the same adopted cluster keeps running, the cluster stays. A second
// destroy finds nothing to do and succeeds.
func TestDestroyRemovesOnlyTheApp(t *testing.T) {
	ctx := context.Background()
	cluster := testutil.UniqueName(t, "ops")
	a := newAWSApp(t, strings.ReplaceAll(adoptedYAML, "CLUSTER", cluster))
	_, err := a.c.ECS.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(cluster)})
	require.NoError(t, err)
	b := a.sibling(strings.ReplaceAll(adoptedYAML, "CLUSTER", cluster))
	for _, x := range []*awsApp{a, b} {
		e := x.env(Options{})
		_, err := e.SecretSet(ctx, "web", map[string]string{"TOKEN": "s3cret"})
		require.NoError(t, err)
		res, msgs := x.deploy(e)
		require.True(t, res.OK, "%s\n%s", res.Error, phases(msgs))
	}
	e := a.env(Options{})
	app := a.sp.App
	in, err := e.findInfra(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, in.LB)
	require.NotEmpty(t, in.ALBGroup)
	require.NotEmpty(t, in.SvcGroup)
	table := e.store.Table()

	res := e.Destroy(ctx, a.sp, nil)
	require.True(t, res.OK, res.Error)

	// Nothing of the app is left.
	svcs, err := a.c.ECS.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{
		e.ecsServiceName("web", SlotA), e.ecsServiceName("web", SlotB), e.ecsServiceName("worker", SlotA), e.ecsServiceName("worker", SlotB),
	}})
	require.NoError(t, err)
	for _, s := range svcs.Services {
		assert.NotEqual(t, "ACTIVE", aws.ToString(s.Status), "ECS service %s is left", aws.ToString(s.ServiceName))
	}
	for _, s := range []Slot{SlotA, SlotB} {
		_, err := a.c.ELB.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{Names: []string{e.targetGroupName("web", s)}})
		assert.Equal(t, "TargetGroupNotFound", apiCode(err), "target group of slot %s", s)
	}
	_, err = a.c.ELB.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{Names: []string{e.lbName()}})
	assert.Equal(t, "LoadBalancerNotFound", apiCode(err))
	_, err = a.c.ELB.DescribeRules(ctx, &elb.DescribeRulesInput{ListenerArn: aws.String(in.Listener)})
	assert.Error(t, err, "the listener's rules are left")
	sgs, err := a.c.EC2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		{Name: aws.String("group-id"), Values: []string{in.ALBGroup, in.SvcGroup}},
	}})
	require.NoError(t, err)
	assert.Empty(t, sgs.SecurityGroups, "security groups are left")
	lgs, err := a.c.Logs.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String("/berth/" + app + "/")})
	require.NoError(t, err)
	assert.Empty(t, lgs.LogGroups, "log groups are left")
	for _, svc := range []string{"web", "worker"} {
		_, err := a.c.ECR.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"berth-" + app + "-prod-" + svc}})
		assert.Equal(t, "RepositoryNotFoundException", apiCode(err), "ECR repository of %s", svc)
	}
	sec, err := a.c.SecretsManager.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("berth/prod/" + app + "/web/TOKEN")})
	if err == nil {
		assert.NotNil(t, sec.DeletedDate, "the app's secret is left")
	} else {
		assert.Equal(t, "ResourceNotFoundException", apiCode(err))
	}
	_, err = a.c.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(e.execRoleName())})
	assert.Equal(t, "NoSuchEntity", apiCode(err), "the execution role is left")
	items, err := a.c.DynamoDB.Query(ctx, &dynamodb.QueryInput{TableName: aws.String(table),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":pk": &ddbtypes.AttributeValueMemberS{Value: "prod/" + app}},
	})
	require.NoError(t, err)
	assert.Zero(t, items.Count, "state items of the app are left: %v", items.Items)
	apps, err := e.store.Apps(ctx, "prod")
	require.NoError(t, err)
	assert.NotContains(t, apps, app)
	assert.Contains(t, apps, b.sp.App)

	// The adopted cluster and the other app are untouched.
	cl, err := a.c.ECS.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{cluster}})
	require.NoError(t, err)
	require.Len(t, cl.Clusters, 1)
	assert.Equal(t, "ACTIVE", aws.ToString(cl.Clusters[0].Status), "the adopted cluster was removed")
	other := b.env(Options{})
	st, err := other.Status(ctx)
	require.NoError(t, err)
	require.Len(t, st.Apps, 1)
	for _, s := range st.Apps[0].Services {
		assert.Equal(t, "running", s.State, "%s of the other app", s.Name)
		assert.Equal(t, 1, s.Revision)
	}
	assert.Equal(t, int32(1), b.desired(other, "web", SlotA))
	assert.Equal(t, int32(1), b.desired(other, "worker", SlotA))
	oin, err := other.findInfra(ctx)
	require.NoError(t, err)
	assert.NotEmpty(t, oin.LB, "the other app's load balancer is gone")
	assert.Equal(t, map[string]string{"host:web": "a", "default": "a"}, b.ruleWeights(other, "web"))
	_, err = a.c.SecretsManager.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("berth/prod/" + b.sp.App + "/web/TOKEN")})
	assert.NoError(t, err, "the other app's secret is gone")
	_, err = a.c.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(other.execRoleName())})
	assert.NoError(t, err, "the other app's role is gone")

	// Again: nothing to do, and fine.
	res = a.env(Options{}).Destroy(ctx, a.sp, nil)
	require.True(t, res.OK, res.Error)
}
