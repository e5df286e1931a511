package awsenv

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/aws/fargate"
	"github.com/berth-dev/berth/internal/spec"
)

// Destroy removes what berth made for the app in the environment, found
// by name, and nothing else: its schedules, autoscaling, ECS services,
// CloudFront distributions and cache policies (an adopted distribution
// stays, untagged; edge.go),
// Cloud Map services and namespace, listener rules, target groups, load
// balancer, security groups, log group, ECR repositories, secrets,
// execution and scheduler roles, its own cluster (an adopted one stays)
// and its records. Every step accepts a part already gone, so a destroy cut off
// is finished by running it again.
func (e *Env) Destroy(ctx context.Context, sp *spec.Spec, out func(api.Message)) api.Message {
	p := progress(out)
	ctx, _, unlock, err := e.lock(ctx, "destroy")
	if err != nil {
		return failure(err)
	}
	defer unlock()
	in, err := e.findInfra(ctx)
	if err != nil {
		return failure(err)
	}
	services := map[string]bool{}
	if sp != nil {
		for _, n := range sp.ServiceOrder {
			services[n] = true
		}
	}
	revs, err := e.state.Revisions(ctx, "")
	if err != nil {
		return failure(err)
	}
	for _, r := range revs {
		services[r.Service] = true
	}
	onAppRunner := appRunnerARNs(sp, revs)
	names := make([]string, 0, len(services))
	for n := range services {
		names = append(names, n)
	}
	sort.Strings(names)
	gone := func(err error, codes ...string) bool {
		if err == nil {
			return true
		}
		c := apiCode(err)
		for _, x := range codes {
			if c == x {
				return true
			}
		}
		return false
	}
	step := func(what string, err error) error {
		if err != nil {
			return fmt.Errorf("destroy %s: %s: %w; run berth destroy --env %s again to finish", e.what(), what, err, e.Name)
		}
		p.phase("drain", "%s: removed %s", e.App, what)
		return nil
	}
	// Nothing may start or scale a task while the services go.
	if err := step("schedules", e.destroySchedules(ctx)); err != nil {
		return failure(err)
	}
	for _, n := range names {
		for _, s := range []Slot{SlotA, SlotB} {
			if err := e.unscale(ctx, n, s); err != nil {
				return failure(step("autoscaling of "+e.ecsServiceName(n, s), err))
			}
		}
	}
	for _, n := range names {
		for _, s := range []Slot{SlotA, SlotB} {
			sn := e.ecsServiceName(n, s)
			if in.Cluster != "" {
				cur, err := e.describeSlot(ctx, in.Cluster, n, s)
				if err != nil {
					return failure(err)
				}
				if cur.Exists {
					_, err := e.c.ECS.DeleteService(ctx, &ecs.DeleteServiceInput{Cluster: aws.String(in.Cluster), Service: aws.String(sn), Force: aws.Bool(true)})
					if err := step("ECS service "+sn, ignore(err, gone(err, "ServiceNotFoundException"))); err != nil {
						return failure(err)
					}
				}
			}
		}
	}
	if err := e.destroyEdge(ctx, sp, step); err != nil {
		return failure(err)
	}
	if err := e.destroyDiscovery(ctx, names, step); err != nil {
		return failure(err)
	}
	if in.Listener != "" {
		if err := e.pruneRules(ctx, in, nil); err != nil {
			return failure(err)
		}
	}
	if in.LB != "" {
		_, err := e.c.ELB.DeleteLoadBalancer(ctx, &elb.DeleteLoadBalancerInput{LoadBalancerArn: aws.String(in.LB)})
		if err := step("load balancer "+e.lbName(), ignore(err, gone(err, "LoadBalancerNotFound"))); err != nil {
			return failure(err)
		}
	}
	for _, n := range names {
		for _, s := range []Slot{SlotA, SlotB} {
			tg := e.targetGroupName(n, s)
			got, err := e.c.ELB.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{Names: []string{tg}})
			if err != nil || len(got.TargetGroups) == 0 {
				continue
			}
			_, err = e.c.ELB.DeleteTargetGroup(ctx, &elb.DeleteTargetGroupInput{TargetGroupArn: got.TargetGroups[0].TargetGroupArn})
			if err := step("target group "+tg, ignore(err, gone(err, "TargetGroupNotFound"))); err != nil {
				return failure(err)
			}
		}
		repo := e.repoName(n)
		if arn := onAppRunner[n]; arn != "" {
			p.phase("drain", "%s: kept ECR repository %s and App Runner service %s, which runs its images (imported: delete it in App Runner, then the repository)", e.App, repo, arn)
			continue
		}
		_, err := e.c.ECR.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: aws.String(repo), Force: true})
		if err := step("ECR repository "+repo, ignore(err, gone(err, "RepositoryNotFoundException"))); err != nil {
			return failure(err)
		}
	}
	// The services' group admits the ALB's: it goes first. A group still
	// used by network interfaces that AWS is releasing is tried again.
	for _, g := range []string{in.SvcGroup, in.ALBGroup} {
		if g == "" {
			continue
		}
		err := retryFor(ctx, time.Minute, func() error {
			_, err := e.c.EC2.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(g)})
			if gone(err, "InvalidGroup.NotFound") {
				return nil
			}
			if apiCode(err) == "DependencyViolation" {
				return errNotReady
			}
			return err
		})
		if err := step("security group "+g, err); err != nil {
			return failure(err)
		}
	}
	_, err = e.c.Logs.DeleteLogGroup(ctx, &cloudwatchlogs.DeleteLogGroupInput{LogGroupName: aws.String(e.logGroupName())})
	if err := step("log group "+e.logGroupName(), ignore(err, gone(err, "ResourceNotFoundException"))); err != nil {
		return failure(err)
	}
	if err := e.deleteSecrets(ctx); err != nil {
		return failure(step("secrets", err))
	}
	if err := e.deleteExecRole(ctx); err != nil {
		return failure(step("IAM role "+e.execRoleName(), err))
	}
	if err := e.deleteTaskRole(ctx); err != nil {
		return failure(step("IAM role "+e.taskRoleName(), err))
	}
	for _, n := range names {
		if err := e.deregisterTaskDefinitions(ctx, n); err != nil {
			return failure(step("task definitions of "+n, err))
		}
	}
	if err := e.deleteSchedulerRole(ctx); err != nil {
		return failure(step("IAM role "+e.schedulerRoleName(), err))
	}
	if e.Cluster == "" && in.Cluster != "" {
		// berth's own cluster goes with the app's last environment on it:
		// one that still runs services is kept (ECS would refuse anyway).
		others, err := e.c.ECS.ListServices(ctx, &ecs.ListServicesInput{Cluster: aws.String(in.Cluster), MaxResults: aws.Int32(1)})
		if err == nil && len(others.ServiceArns) > 0 {
			err = &smithy.GenericAPIError{Code: "ClusterContainsServicesException"}
		} else {
			_, err = e.c.ECS.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String(in.Cluster)})
		}
		switch {
		case err != nil && gone(err, "ClusterContainsServicesException", "ClusterContainsTasksException"):
			p.phase("drain", "%s: kept ECS cluster %s: another environment of the app runs on it", e.App, in.Cluster)
		default:
			if err := step("ECS cluster "+in.Cluster, ignore(err, gone(err, "ClusterNotFoundException"))); err != nil {
				return failure(err)
			}
		}
	}
	if err := e.state.Delete(ctx); err != nil {
		return failure(err)
	}
	p.phase("done", "%s: destroyed", e.what())
	return api.Message{Kind: api.KindResult, Time: time.Now(), OK: true}
}

// ignore is nil when ok, else err.
func ignore(err error, ok bool) error {
	if ok {
		return nil
	}
	return err
}

// retryFor calls step until it answers other than errNotReady, for up to d.
func retryFor(ctx context.Context, d time.Duration, step func() error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return poll(ctx, 2*time.Second, step)
}

func (e *Env) deleteSecrets(ctx context.Context) error {
	pg := secretsmanager.NewListSecretsPaginator(e.c.SecretsManager, &secretsmanager.ListSecretsInput{})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, s := range page.SecretList {
			if !strings.HasPrefix(aws.ToString(s.Name), e.secretPrefix()) {
				continue
			}
			if _, err := e.c.SecretsManager.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: s.ARN, ForceDeleteWithoutRecovery: aws.Bool(true)}); err != nil && apiCode(err) != "ResourceNotFoundException" {
				return err
			}
		}
	}
	return nil
}

// deregisterTaskDefinitions marks every revision of a service's task
// definition family in the environment inactive (ECS keeps inactive ones
// for a while; none can start a task again).
func (e *Env) deregisterTaskDefinitions(ctx context.Context, service string) error {
	pg := ecs.NewListTaskDefinitionsPaginator(e.c.ECS, &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String(fargate.Family(e.App, e.Name, service))})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, arn := range page.TaskDefinitionArns {
			if _, err := e.c.ECS.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String(arn)}); err != nil && apiCode(err) != "ClientException" {
				return err
			}
		}
	}
	return nil
}
