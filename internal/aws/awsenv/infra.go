package awsenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/smithy-go"

	"github.com/berth-dev/berth/internal/aws/fargate"
	"github.com/berth-dev/berth/internal/spec"
)

// The shared resources of an app in an environment, made once and found
// again by name and tags on every later verb (nothing is kept locally).
//
//	cluster      berth-APP, or the environment's cluster: (adopted, never deleted)
//	log group    /berth/APP/ENV
//	groups       berth-APP-ENV-alb (80, 443 from anywhere),
//	             berth-APP-ENV-svc (everything from the ALB's group and itself)
//	ALB          an internet-facing load balancer, its HTTP listener answering
//	             404 where no service's rule matches
type infra struct {
	VPC        string
	Subnets    []string
	ALBGroup   string // security group IDs
	SvcGroup   string
	Cluster    string // name
	LogGroup   string
	LB         string // ARN
	LBDNS      string
	Listener   string // ARN of the HTTP listener
	PublicIPv4 bool   // tasks get a public address (default VPC subnets: no NAT to reach ECR)
}

// apiCode is the error code of an AWS API error, or "".
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// name builds an AWS resource name from parts, within max characters: as
// is when it fits, else cut with a short hash of the whole, so two long
// names stay apart.
func name(max int, parts ...string) string {
	n := strings.Join(parts, "-")
	if len(n) <= max {
		return n
	}
	sum := sha256.Sum256([]byte(n))
	h := hex.EncodeToString(sum[:])[:8]
	return strings.TrimRight(n[:max-9], "-") + "-" + h
}

// ensureInfra finds or makes the app's shared resources: what its tasks
// need (taskInfra) and the load balancer.
func (e *Env) ensureInfra(ctx context.Context) (*infra, error) {
	in, err := e.taskInfra(ctx)
	if err != nil {
		return nil, err
	}
	if err := e.loadBalancer(ctx, in, true); err != nil {
		return nil, err
	}
	return in, nil
}

// findInfra finds the app's shared resources without making any: a verb
// that only reads (status, plan) or only removes (destroy). Missing parts
// are left empty.
func (e *Env) findInfra(ctx context.Context) (*infra, error) {
	in := &infra{}
	if err := e.network(ctx, in); err != nil {
		return nil, err
	}
	if err := e.findGroups(ctx, in); err != nil {
		return nil, err
	}
	if err := e.cluster(ctx, in, false); err != nil {
		return nil, err
	}
	in.LogGroup = e.logGroupName()
	if err := e.loadBalancer(ctx, in, false); err != nil {
		return nil, err
	}
	return in, nil
}

// network picks the VPC and subnets: the environment's subnets, or the
// default VPC's.
func (e *Env) network(ctx context.Context, in *infra) error {
	if len(e.Subnets) > 0 {
		out, err := e.c.EC2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: e.Subnets})
		if err != nil {
			return fmt.Errorf("environment %s: subnets %s: %w (check subnets: in berth.yaml)", e.Name, strings.Join(e.Subnets, ", "), err)
		}
		for _, s := range out.Subnets {
			if in.VPC != "" && in.VPC != aws.ToString(s.VpcId) {
				return fmt.Errorf("environment %s: subnets %s are in different VPCs (%s, %s); list subnets of one VPC", e.Name, strings.Join(e.Subnets, ", "), in.VPC, aws.ToString(s.VpcId))
			}
			in.VPC = aws.ToString(s.VpcId)
			in.PublicIPv4 = in.PublicIPv4 || aws.ToBool(s.MapPublicIpOnLaunch)
		}
		in.Subnets = append([]string(nil), e.Subnets...)
		return nil
	}
	vpcs, err := e.c.EC2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: []ec2types.Filter{{Name: aws.String("is-default"), Values: []string{"true"}}}})
	if err != nil {
		return fmt.Errorf("environment %s: find the default VPC: %w", e.Name, err)
	}
	if len(vpcs.Vpcs) == 0 {
		return fmt.Errorf("environment %s: region %s has no default VPC; name the subnets to use under environments.%s.subnets", e.Name, e.Region, e.Name)
	}
	in.VPC = aws.ToString(vpcs.Vpcs[0].VpcId)
	subs, err := e.c.EC2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{in.VPC}}}})
	if err != nil {
		return fmt.Errorf("environment %s: subnets of the default VPC: %w", e.Name, err)
	}
	for _, s := range subs.Subnets {
		in.Subnets = append(in.Subnets, aws.ToString(s.SubnetId))
	}
	if len(in.Subnets) == 0 {
		return fmt.Errorf("environment %s: the default VPC %s has no subnets; name the subnets under environments.%s.subnets", e.Name, in.VPC, e.Name)
	}
	in.PublicIPv4 = true // the default VPC's subnets are public and have no NAT
	return nil
}

func (e *Env) groupName(role string) string {
	return name(255, "berth", e.App, e.Name, role)
}

// findGroups finds the app's two security groups, leaving missing ones empty.
func (e *Env) findGroups(ctx context.Context, in *infra) error {
	out, err := e.c.EC2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{in.VPC}},
		{Name: aws.String("group-name"), Values: []string{e.groupName("alb"), e.groupName("svc")}},
	}})
	if err != nil {
		return fmt.Errorf("find the security groups of %s: %w", e.what(), err)
	}
	for _, g := range out.SecurityGroups {
		switch aws.ToString(g.GroupName) {
		case e.groupName("alb"):
			in.ALBGroup = aws.ToString(g.GroupId)
		case e.groupName("svc"):
			in.SvcGroup = aws.ToString(g.GroupId)
		}
	}
	return nil
}

// securityGroups makes the ALB's group (HTTP and HTTPS from anywhere) and
// the services' (everything from the ALB's group and from itself, so the
// app's services reach each other and no other app's do).
func (e *Env) securityGroups(ctx context.Context, in *infra) error {
	if err := e.findGroups(ctx, in); err != nil {
		return err
	}
	mk := func(role, desc string) (string, error) {
		out, err := e.c.EC2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
			GroupName: aws.String(e.groupName(role)), Description: aws.String(desc), VpcId: aws.String(in.VPC),
			TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSecurityGroup, Tags: e.ec2Tags(nil)}},
		})
		if err != nil {
			return "", fmt.Errorf("create security group %s: %w", e.groupName(role), err)
		}
		return aws.ToString(out.GroupId), nil
	}
	var err error
	if in.ALBGroup == "" {
		if in.ALBGroup, err = mk("alb", "berth "+e.App+" ("+e.Name+"): the load balancer"); err != nil {
			return err
		}
		var perms []ec2types.IpPermission
		for _, p := range []int32{80, 443} {
			perms = append(perms, ec2types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(p), ToPort: aws.Int32(p),
				IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}})
		}
		if _, err := e.c.EC2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(in.ALBGroup), IpPermissions: perms}); err != nil && apiCode(err) != "InvalidPermission.Duplicate" {
			return fmt.Errorf("open the load balancer's group %s: %w", in.ALBGroup, err)
		}
	}
	if in.SvcGroup == "" {
		if in.SvcGroup, err = mk("svc", "berth "+e.App+" ("+e.Name+"): the services"); err != nil {
			return err
		}
		perms := []ec2types.IpPermission{{IpProtocol: aws.String("-1"), UserIdGroupPairs: []ec2types.UserIdGroupPair{
			{GroupId: aws.String(in.ALBGroup)}, {GroupId: aws.String(in.SvcGroup)},
		}}}
		if _, err := e.c.EC2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(in.SvcGroup), IpPermissions: perms}); err != nil && apiCode(err) != "InvalidPermission.Duplicate" {
			return fmt.Errorf("open the services' group %s: %w", in.SvcGroup, err)
		}
	}
	return nil
}

// clusterName is the cluster the app runs on.
func (e *Env) clusterName() string {
	if e.Cluster != "" {
		return e.Cluster
	}
	return name(255, "berth", e.App)
}

// cluster finds the cluster, making berth's own when create is set; a
// named (adopted) cluster must exist.
func (e *Env) cluster(ctx context.Context, in *infra, create bool) error {
	n := e.clusterName()
	out, err := e.c.ECS.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{n}})
	if err != nil {
		return fmt.Errorf("find ECS cluster %s: %w", n, err)
	}
	for _, c := range out.Clusters {
		if aws.ToString(c.Status) == "ACTIVE" {
			in.Cluster = n
			return nil
		}
	}
	if e.Cluster != "" {
		return fmt.Errorf("environment %s: ECS cluster %s not found in %s; fix environments.%s.cluster, or remove it to let berth make berth-%s", e.Name, n, e.Region, e.Name, e.App)
	}
	if !create {
		return nil
	}
	if _, err := e.c.ECS.CreateCluster(ctx, &ecs.CreateClusterInput{
		ClusterName: aws.String(n), CapacityProviders: []string{"FARGATE", "FARGATE_SPOT"}, Tags: e.ecsTags(nil),
	}); err != nil {
		return fmt.Errorf("create ECS cluster %s: %w", n, err)
	}
	in.Cluster = n
	return nil
}

func (e *Env) logGroupName() string { return "/berth/" + e.App + "/" + e.Name }

func (e *Env) logGroup(ctx context.Context, in *infra) error {
	in.LogGroup = e.logGroupName()
	_, err := e.c.Logs.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(in.LogGroup), Tags: e.tagMap(nil)})
	if err != nil && apiCode(err) != "ResourceAlreadyExistsException" {
		return fmt.Errorf("create log group %s: %w", in.LogGroup, err)
	}
	return nil
}

func (e *Env) lbName() string { return name(32, "berth", e.App, e.Name) }

// loadBalancer finds the app's ALB and its HTTP listener, making them when
// create is set.
func (e *Env) loadBalancer(ctx context.Context, in *infra, create bool) error {
	n := e.lbName()
	out, err := e.c.ELB.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{Names: []string{n}})
	switch {
	case err == nil && len(out.LoadBalancers) > 0:
		in.LB, in.LBDNS = aws.ToString(out.LoadBalancers[0].LoadBalancerArn), aws.ToString(out.LoadBalancers[0].DNSName)
	case err != nil && apiCode(err) != "LoadBalancerNotFound":
		return fmt.Errorf("find load balancer %s: %w", n, err)
	case !create:
		return nil
	default:
		mk, err := e.c.ELB.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{
			Name: aws.String(n), Subnets: in.Subnets, SecurityGroups: []string{in.ALBGroup},
			Scheme: elbtypes.LoadBalancerSchemeEnumInternetFacing, Type: elbtypes.LoadBalancerTypeEnumApplication,
			Tags: e.elbTags(nil),
		})
		if err != nil {
			return fmt.Errorf("create load balancer %s: %w", n, err)
		}
		in.LB, in.LBDNS = aws.ToString(mk.LoadBalancers[0].LoadBalancerArn), aws.ToString(mk.LoadBalancers[0].DNSName)
	}
	ls, err := e.c.ELB.DescribeListeners(ctx, &elb.DescribeListenersInput{LoadBalancerArn: aws.String(in.LB)})
	if err != nil {
		return fmt.Errorf("find the listeners of %s: %w", n, err)
	}
	for _, l := range ls.Listeners {
		if aws.ToInt32(l.Port) == 80 {
			in.Listener = aws.ToString(l.ListenerArn)
			return nil
		}
	}
	if !create {
		return nil
	}
	l, err := e.c.ELB.CreateListener(ctx, &elb.CreateListenerInput{
		LoadBalancerArn: aws.String(in.LB), Port: aws.Int32(80), Protocol: elbtypes.ProtocolEnumHttp,
		DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumFixedResponse, FixedResponseConfig: &elbtypes.FixedResponseActionConfig{
			StatusCode: aws.String("404"), ContentType: aws.String("text/plain"), MessageBody: aws.String("berth: no service here\n"),
		}}},
		Tags: e.elbTags(nil),
	})
	if err != nil {
		return fmt.Errorf("create the HTTP listener of %s: %w", n, err)
	}
	in.Listener = aws.ToString(l.Listeners[0].ListenerArn)
	return nil
}

// Tags: every resource berth makes carries berth.app and berth.env, and
// where it applies berth.service and berth.revision.
func (e *Env) tagMap(extra map[string]string) map[string]string {
	m := map[string]string{TagApp: e.App, TagEnv: e.Name}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func (e *Env) ec2Tags(extra map[string]string) []ec2types.Tag {
	var ts []ec2types.Tag
	for k, v := range e.tagMap(extra) {
		ts = append(ts, ec2types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	return ts
}

func (e *Env) ecsTags(extra map[string]string) []ecstypes.Tag {
	var ts []ecstypes.Tag
	for k, v := range e.tagMap(extra) {
		ts = append(ts, ecstypes.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	return ts
}

func (e *Env) elbTags(extra map[string]string) []elbtypes.Tag {
	var ts []elbtypes.Tag
	for k, v := range e.tagMap(extra) {
		ts = append(ts, elbtypes.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	return ts
}

// Tag keys.
const (
	TagApp      = "berth.app"
	TagEnv      = "berth.env"
	TagService  = "berth.service"
	TagRevision = "berth.revision"
	TagSlot     = "berth.slot"
)

// idleTimeout sets the ALB's idle timeout to the longest request timeout
// of the app's services (timeout:), which the ALB holds a request open for.
func (e *Env) idleTimeout(ctx context.Context, in *infra, sp *spec.Spec) error {
	secs := fargate.IdleTimeoutSeconds(sp)
	_, err := e.c.ELB.ModifyLoadBalancerAttributes(ctx, &elb.ModifyLoadBalancerAttributesInput{
		LoadBalancerArn: aws.String(in.LB),
		Attributes:      []elbtypes.LoadBalancerAttribute{{Key: aws.String("idle_timeout.timeout_seconds"), Value: aws.String(strconv.Itoa(secs))}},
	})
	if err != nil {
		return fmt.Errorf("set the idle timeout of load balancer %s to %ds: %w", e.lbName(), secs, err)
	}
	return nil
}
