package awsenv

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	sd "github.com/aws/aws-sdk-go-v2/service/servicediscovery"
	sdtypes "github.com/aws/aws-sdk-go-v2/service/servicediscovery/types"
)

// Services of one app reach each other by name through Cloud Map, in a
// private DNS namespace of the app's VPC that no other app's tasks are
// told of (and the services' security group admits only the app's own):
//
//	namespace   APP.ENV.berth.internal (private DNS, the app's VPC)
//	a.SERVICE   A records of slot a's tasks (its ECS service's serviceRegistries)
//	b.SERVICE   A records of slot b's tasks
//	SERVICE     a CNAME to the serving slot's name: SERVICE.APP.ENV.berth.internal
//	            → b.SERVICE.APP.ENV.berth.internal → the serving tasks
//
// Why a name per slot and a CNAME: ECS registers every running task of a
// service, so the warm slot (the previous revision, still running for an
// instant rollback) would answer SERVICE.APP.ENV.berth.internal if both slots
// registered there. Registering only while serving is not possible
// without a new deployment: UpdateService's serviceRegistries starts new
// tasks, which would make a rollback an ECS deployment instead of a
// switch. So each slot's ECS service registers, from its creation, under
// its own name, and a switch repoints the CNAME (one RegisterInstance,
// then one DeregisterInstance; no ECS call). A client that resolved the
// name just before a switch may reach the previous slot for the CNAME's
// TTL (dnsTTL); it still runs then. The slots' own names
// (a.SERVICE.APP.ENV.berth.internal) answer while a slot runs, warm or not.

// dnsTTL is the TTL of the records berth's Cloud Map services make.
const dnsTTL = 10

// cnameAttr is the Cloud Map instance attribute of a CNAME record's value.
const cnameAttr = "AWS_INSTANCE_CNAME"

func (e *Env) namespaceName() string { return e.App + "." + e.Name + ".berth.internal" }

func slotDNSName(service string, s Slot) string { return string(s) + "." + service }

// findNamespace finds the app's namespace in this environment, by name and
// its berth.env tag (two environments in two VPCs have one name each).
func (e *Env) findNamespace(ctx context.Context) (string, error) {
	var next *string
	for {
		page, err := e.c.ServiceDiscovery.ListNamespaces(ctx, &sd.ListNamespacesInput{NextToken: next, Filters: []sdtypes.NamespaceFilter{
			{Name: sdtypes.NamespaceFilterNameName, Values: []string{e.namespaceName()}, Condition: sdtypes.FilterConditionEq},
		}})
		if err != nil {
			return "", fmt.Errorf("find Cloud Map namespace %s: %w", e.namespaceName(), err)
		}
		for _, ns := range page.Namespaces {
			if aws.ToString(ns.Name) != e.namespaceName() || ns.Type != sdtypes.NamespaceTypeDnsPrivate {
				continue
			}
			if ok, err := e.ownsCloudMap(ctx, aws.ToString(ns.Arn)); err != nil || ok {
				return aws.ToString(ns.Id), err
			}
		}
		if page.NextToken == nil {
			return "", nil
		}
		next = page.NextToken
	}
}

// ownsCloudMap says whether a Cloud Map resource carries this app's and
// environment's tags.
func (e *Env) ownsCloudMap(ctx context.Context, arn string) (bool, error) {
	tags, err := e.c.ServiceDiscovery.ListTagsForResource(ctx, &sd.ListTagsForResourceInput{ResourceARN: aws.String(arn)})
	if err != nil {
		return false, fmt.Errorf("read the tags of %s: %w", arn, err)
	}
	app, env := false, false
	for _, t := range tags.Tags {
		app = app || (aws.ToString(t.Key) == TagApp && aws.ToString(t.Value) == e.App)
		env = env || (aws.ToString(t.Key) == TagEnv && aws.ToString(t.Value) == e.Name)
	}
	return app && env, nil
}

func (e *Env) sdTags(extra map[string]string) []sdtypes.Tag {
	var ts []sdtypes.Tag
	for k, v := range e.tagMap(extra) {
		ts = append(ts, sdtypes.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	return ts
}

// namespace finds or makes the app's private DNS namespace in its VPC.
// Making one is asynchronous in Cloud Map: its operation is waited on.
func (e *Env) namespace(ctx context.Context, in *infra) (string, error) {
	id, err := e.findNamespace(ctx)
	if err != nil || id != "" {
		return id, err
	}
	out, err := e.c.ServiceDiscovery.CreatePrivateDnsNamespace(ctx, &sd.CreatePrivateDnsNamespaceInput{
		Name: aws.String(e.namespaceName()), Vpc: aws.String(in.VPC),
		Description: aws.String("berth " + e.what() + ": its services by name"),
		Tags:        e.sdTags(nil),
	})
	if apiCode(err) == "ConflictingDomainExists" {
		return "", fmt.Errorf("Cloud Map namespace %s already exists in VPC %s for another environment of %s; give environment %s subnets in another VPC (environments.%s.subnets)",
			e.namespaceName(), in.VPC, e.App, e.Name, e.Name)
	}
	if err != nil {
		return "", fmt.Errorf("create Cloud Map namespace %s: %w", e.namespaceName(), err)
	}
	op, err := e.waitOperation(ctx, aws.ToString(out.OperationId))
	if err != nil {
		return "", fmt.Errorf("create Cloud Map namespace %s: %w", e.namespaceName(), err)
	}
	return op.Targets[string(sdtypes.OperationTargetTypeNamespace)], nil
}

// waitOperation waits for a Cloud Map operation to succeed.
func (e *Env) waitOperation(ctx context.Context, id string) (*sdtypes.Operation, error) {
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	var op *sdtypes.Operation
	err := poll(wctx, time.Second, func() error {
		out, err := e.c.ServiceDiscovery.GetOperation(wctx, &sd.GetOperationInput{OperationId: aws.String(id)})
		if err != nil {
			return err
		}
		op = out.Operation
		switch op.Status {
		case sdtypes.OperationStatusSuccess:
			return nil
		case sdtypes.OperationStatusFail:
			return fmt.Errorf("%s: %s", aws.ToString(op.ErrorCode), aws.ToString(op.ErrorMessage))
		}
		return errNotReady
	})
	return op, err
}

// cloudMapServices finds the Cloud Map services of a namespace whose names
// are asked for: name → ID.
func (e *Env) cloudMapServices(ctx context.Context, ns string, names ...string) (map[string]string, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	found := map[string]string{}
	var next *string
	for {
		page, err := e.c.ServiceDiscovery.ListServices(ctx, &sd.ListServicesInput{NextToken: next, Filters: []sdtypes.ServiceFilter{
			{Name: sdtypes.ServiceFilterNameNamespaceId, Values: []string{ns}, Condition: sdtypes.FilterConditionEq},
		}})
		if err != nil {
			return nil, fmt.Errorf("list the Cloud Map services of %s: %w", e.namespaceName(), err)
		}
		for _, s := range page.Services {
			n := aws.ToString(s.Name)
			if !want[n] || found[n] != "" {
				continue
			}
			// The summary does not name its namespace; the service does.
			got, err := e.c.ServiceDiscovery.GetService(ctx, &sd.GetServiceInput{Id: s.Id})
			if err != nil {
				if apiCode(err) == "ServiceNotFound" {
					continue
				}
				return nil, fmt.Errorf("read Cloud Map service %s: %w", n, err)
			}
			if aws.ToString(got.Service.NamespaceId) == ns {
				found[n] = aws.ToString(s.Id)
			}
		}
		if page.NextToken == nil {
			return found, nil
		}
		next = page.NextToken
	}
}

// cloudMapService finds or makes one Cloud Map service of the namespace.
func (e *Env) cloudMapService(ctx context.Context, ns, n, service string, rec sdtypes.RecordType, routing sdtypes.RoutingPolicy) (id, arn string, err error) {
	have, err := e.cloudMapServices(ctx, ns, n)
	if err != nil {
		return "", "", err
	}
	if id := have[n]; id != "" {
		got, err := e.c.ServiceDiscovery.GetService(ctx, &sd.GetServiceInput{Id: aws.String(id)})
		if err != nil {
			return "", "", fmt.Errorf("read Cloud Map service %s: %w", n, err)
		}
		return id, aws.ToString(got.Service.Arn), nil
	}
	in := &sd.CreateServiceInput{
		Name: aws.String(n), NamespaceId: aws.String(ns),
		Description: aws.String("berth " + e.what() + ": " + service),
		DnsConfig:   &sdtypes.DnsConfig{RoutingPolicy: routing, DnsRecords: []sdtypes.DnsRecord{{Type: rec, TTL: aws.Int64(dnsTTL)}}},
		Tags:        e.sdTags(map[string]string{TagService: service}),
	}
	if rec == sdtypes.RecordTypeA {
		in.HealthCheckCustomConfig = &sdtypes.HealthCheckCustomConfig{} // ECS reports its tasks' health
	}
	out, err := e.c.ServiceDiscovery.CreateService(ctx, in)
	if err != nil {
		return "", "", fmt.Errorf("create Cloud Map service %s.%s: %w", n, e.namespaceName(), err)
	}
	return aws.ToString(out.Service.Id), aws.ToString(out.Service.Arn), nil
}

// slotRegistries are the serviceRegistries of a slot's ECS service: its
// slot's Cloud Map service (made with the namespace if missing).
func (e *Env) slotRegistries(ctx context.Context, in *infra, service string, s Slot) ([]ecstypes.ServiceRegistry, error) {
	if in.VPC == "" {
		return nil, nil
	}
	ns, err := e.namespace(ctx, in)
	if err != nil {
		return nil, err
	}
	_, arn, err := e.cloudMapService(ctx, ns, slotDNSName(service, s), service, sdtypes.RecordTypeA, sdtypes.RoutingPolicyMultivalue)
	if err != nil {
		return nil, err
	}
	return []ecstypes.ServiceRegistry{{RegistryArn: aws.String(arn)}}, nil
}

// pointName makes SERVICE.APP.ENV.berth.internal name the serving slot: the
// service's CNAME instance for the slot is registered, then the other
// slot's removed, so the name always resolves. Cloud Map applies both
// asynchronously; berth does not wait for the records.
func (e *Env) pointName(ctx context.Context, in *infra, service string, serving Slot) error {
	if in.VPC == "" {
		return nil
	}
	ns, err := e.namespace(ctx, in)
	if err != nil {
		return err
	}
	id, _, err := e.cloudMapService(ctx, ns, service, service, sdtypes.RecordTypeCname, sdtypes.RoutingPolicyWeighted)
	if err != nil {
		return err
	}
	target := slotDNSName(service, serving) + "." + e.namespaceName()
	if _, err := e.c.ServiceDiscovery.RegisterInstance(ctx, &sd.RegisterInstanceInput{
		ServiceId: aws.String(id), InstanceId: aws.String("slot-" + string(serving)),
		Attributes: map[string]string{cnameAttr: target},
	}); err != nil {
		return fmt.Errorf("point %s.%s at %s: %w", service, e.namespaceName(), target, err)
	}
	_, err = e.c.ServiceDiscovery.DeregisterInstance(ctx, &sd.DeregisterInstanceInput{ServiceId: aws.String(id), InstanceId: aws.String("slot-" + string(serving.Other()))})
	if err != nil && apiCode(err) != "InstanceNotFound" {
		return fmt.Errorf("stop %s.%s naming slot %s: %w", service, e.namespaceName(), serving.Other(), err)
	}
	return nil
}

// destroyDiscovery removes the app's Cloud Map services and namespace. It
// runs after the ECS services are deleted; Cloud Map refuses to delete a
// service until ECS has deregistered its tasks, so that is waited for.
func (e *Env) destroyDiscovery(ctx context.Context, services []string, step func(string, error) error) error {
	ns, err := e.findNamespace(ctx)
	if err != nil || ns == "" {
		return err
	}
	var names []string
	for _, n := range services {
		names = append(names, n, slotDNSName(n, SlotA), slotDNSName(n, SlotB))
	}
	have, err := e.cloudMapServices(ctx, ns, names...)
	if err != nil {
		return err
	}
	for _, n := range names {
		id := have[n]
		if id == "" {
			continue
		}
		if ls, err := e.c.ServiceDiscovery.ListInstances(ctx, &sd.ListInstancesInput{ServiceId: aws.String(id)}); err == nil {
			for _, i := range ls.Instances {
				if _, ok := i.Attributes[cnameAttr]; ok { // berth's own; ECS removes the tasks'
					_, _ = e.c.ServiceDiscovery.DeregisterInstance(ctx, &sd.DeregisterInstanceInput{ServiceId: aws.String(id), InstanceId: i.Id})
				}
			}
		}
		err := retryFor(ctx, 3*time.Minute, func() error {
			_, err := e.c.ServiceDiscovery.DeleteService(ctx, &sd.DeleteServiceInput{Id: aws.String(id)})
			switch apiCode(err) {
			case "ServiceNotFound":
				return nil
			case "ResourceInUse":
				return errNotReady
			}
			return err
		})
		if err := step("Cloud Map service "+n+"."+e.namespaceName(), err); err != nil {
			return err
		}
	}
	err = retryFor(ctx, 3*time.Minute, func() error {
		out, err := e.c.ServiceDiscovery.DeleteNamespace(ctx, &sd.DeleteNamespaceInput{Id: aws.String(ns)})
		if err == nil {
			_, err = e.waitOperation(ctx, aws.ToString(out.OperationId))
			return err
		}
		switch apiCode(err) {
		case "NamespaceNotFound":
			return nil
		case "ResourceInUse":
			return errNotReady
		}
		return err
	})
	return step("Cloud Map namespace "+e.namespaceName(), err)
}
