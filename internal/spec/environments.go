package spec

import (
	"fmt"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// The environments: section names the places other than the local engine
// where the app can run. Without --env every verb stays on the local engine,
// which is why "local" is never written here.
//
//	environments:
//	  prod:
//	    engine: aws                    # required; the only engine an environment can name
//	    region: eu-west-1              # default: the AWS SDK's standard chain
//	    subnets: [subnet-0a1b2c3d]     # default: the default VPC's subnets
//	    cluster: ops                   # an existing ECS cluster (name or ARN); default berth-APP

// Environment is one entry under environments:.
type Environment struct {
	Name string `json:"name"`
	// Engine is where the environment runs; EngineAWS is the only one.
	Engine string `json:"engine"`
	// Region is the AWS region; empty means the SDK's standard chain
	// (AWS_REGION, the profile).
	Region string `json:"region,omitempty"`
	// Subnets are the subnet IDs tasks and the load balancer use; empty
	// means the default VPC's.
	Subnets []string `json:"subnets,omitempty"`
	// Cluster is an existing ECS cluster's name or ARN; empty means berth's
	// own, berth-APP.
	Cluster string `json:"cluster,omitempty"`
}

// Engines an environment can name.
const (
	// EngineAWS runs the app on AWS ECS Fargate.
	EngineAWS = "aws"
	// EngineLocal is the engine without --env. It is the default and is
	// never written in environments:.
	EngineLocal = "local"
)

// environmentKeys are the keys of one environment, in the order
// docs/spec.md lists them.
var environmentKeys = []string{"engine", "region", "subnets", "cluster"}

// environmentNameRE is the rule for environment names: they become parts of AWS
// resource names (berth-APP-ENV-exec, /berth/APP/ENV), so they are short.
var environmentNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)

// regionRE is the shape of an AWS region: eu-west-1, us-gov-west-1,
// cn-north-1, eusc-de-east-1.
var regionRE = regexp.MustCompile(`^[a-z]{2,4}(-[a-z]+)+-[0-9]{1,2}$`)

// subnetRE is the shape of a subnet ID: "subnet-" and 8 or 17 hex digits.
var subnetRE = regexp.MustCompile(`^subnet-([0-9a-f]{8}|[0-9a-f]{17})$`)

// clusterNameRE and clusterARNRE are the shapes ECS gives a cluster's name
// and ARN.
var (
	clusterNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)
	clusterARNRE  = regexp.MustCompile(`^arn:aws[a-z-]*:ecs:([a-z0-9-]+):[0-9]{12}:cluster/[A-Za-z0-9_-]{1,255}$`)
)

func checkEnvironmentName(name string) string {
	if name == EngineLocal {
		return `"local" is the local engine, used without --env; name AWS environments otherwise, e.g. prod`
	}
	if environmentNameRE.MatchString(name) {
		return ""
	}
	return fmt.Sprintf("invalid environment name %q: use 1-32 characters of a-z, 0-9 and '-', starting and ending with a letter or digit", name)
}

func checkEngine(engine string) string {
	switch engine {
	case EngineAWS:
		return ""
	case EngineLocal:
		return `"local" is the default without --env and is not written here; an environment names engine: aws`
	case "":
		return "is required: engine: aws"
	}
	return fmt.Sprintf("unknown engine %q; an environment names engine: aws", engine)
}

func checkRegion(region string) string {
	if regionRE.MatchString(region) {
		return ""
	}
	return fmt.Sprintf("invalid region %q: use an AWS region code, e.g. eu-west-1 or us-east-1", region)
}

func checkSubnet(id string) string {
	if subnetRE.MatchString(id) {
		return ""
	}
	return fmt.Sprintf("invalid subnet ID %q: use subnet- and 8 or 17 lowercase hex digits, e.g. subnet-0a1b2c3d4e5f67890", id)
}

// checkCluster checks a cluster name or ARN; region, when set, must be the
// ARN's.
func checkCluster(cluster, region string) string {
	if m := clusterARNRE.FindStringSubmatch(cluster); m != nil {
		if region != "" && m[1] != region {
			return fmt.Sprintf("cluster %q is in region %s, not the environment's region %s; use a cluster of %s or its name", cluster, m[1], region, region)
		}
		return ""
	}
	if strings.HasPrefix(cluster, "arn:") {
		return fmt.Sprintf("invalid cluster ARN %q: use arn:aws:ecs:REGION:ACCOUNT:cluster/NAME, or the cluster's name", cluster)
	}
	if clusterNameRE.MatchString(cluster) {
		return ""
	}
	return fmt.Sprintf("invalid cluster name %q: use 1-255 letters, digits, '-' and '_', or the cluster's ARN", cluster)
}

// environments decodes environments: NAME: {...} in file order.
func (d *decoder) environments(s *Spec, e entry) error {
	const path = "environments"
	entries, err := d.mapping(e.val, path, nil)
	if err != nil {
		return err
	}
	for _, ne := range entries {
		if msg := checkEnvironmentName(ne.key); msg != "" {
			return d.errAt(ne.keyNode, path, "%s", msg)
		}
		f := join(path, ne.key)
		d.mark(f, ne.keyNode)
		env, err := d.environment(ne.key, ne.keyNode, ne.val, f)
		if err != nil {
			return err
		}
		if s.Environments == nil {
			s.Environments = map[string]*Environment{}
		}
		s.Environments[ne.key] = env
		s.EnvironmentOrder = append(s.EnvironmentOrder, ne.key)
	}
	return nil
}

// environment decodes one environment.
func (d *decoder) environment(name string, key, n *yaml.Node, path string) (*Environment, error) {
	if nd := deref(n); !isNull(nd) && nd.Kind != yaml.MappingNode {
		return nil, d.errAt(nd, path, "must be a mapping with engine: aws, not %s", describe(nd))
	}
	entries, err := d.mapping(n, path, environmentKeys)
	if err != nil {
		return nil, err
	}
	env := &Environment{Name: name}
	var clusterNode *yaml.Node
	for _, e := range entries {
		f := join(path, e.key)
		d.mark(f, e.keyNode)
		var msg string
		switch e.key {
		case "engine":
			if env.Engine, err = d.str(e.val, f); err == nil {
				msg = checkEngine(env.Engine)
			}
		case "region":
			if env.Region, err = d.str(e.val, f); err == nil {
				msg = checkRegion(env.Region)
			}
		case "subnets":
			env.Subnets, err = d.subnets(e.val, f)
		case "cluster":
			clusterNode = e.val
			env.Cluster, err = d.str(e.val, f)
		}
		if err != nil {
			return nil, err
		}
		if msg != "" {
			return nil, d.errAt(e.val, f, "%s", msg)
		}
	}
	if env.Engine == "" {
		return nil, d.errAt(key, join(path, "engine"), "is required: engine: aws")
	}
	// The region may follow the cluster in the file, so the cluster is
	// judged once both are known.
	if clusterNode != nil {
		if msg := checkCluster(env.Cluster, env.Region); msg != "" {
			return nil, d.errAt(clusterNode, join(path, "cluster"), "%s", msg)
		}
	}
	return env, nil
}

// subnets decodes a list of subnet IDs.
func (d *decoder) subnets(n *yaml.Node, path string) ([]string, error) {
	ids, err := d.stringList(n, path, "[subnet-0a1b2c3d, subnet-4e5f6a7b]", true)
	if err != nil {
		return nil, err
	}
	items := deref(n).Content
	first := make(map[string]int, len(ids))
	for i, id := range ids {
		if msg := checkSubnet(id); msg != "" {
			return nil, d.errAt(items[i], index(path, i), "%s", msg)
		}
		if line, dup := first[id]; dup {
			return nil, d.errAt(items[i], index(path, i), "duplicate subnet %q (also at line %d)", id, line)
		}
		first[id] = deref(items[i]).Line
	}
	return ids, nil
}

// environments checks every environment again, for a spec built or changed
// in code.
func (v *validator) environments() error {
	for _, name := range ordered(v.s.EnvironmentOrder, v.s.Environments) {
		path := join("environments", name)
		if msg := checkEnvironmentName(name); msg != "" {
			return v.fail("environments", "%s", msg)
		}
		env := v.s.Environments[name]
		if env == nil {
			return v.fail(path, "is empty; it needs engine: aws")
		}
		if env.Name != name {
			return v.fail(path, "name %q does not match its key %q", env.Name, name)
		}
		if msg := checkEngine(env.Engine); msg != "" {
			return v.fail(join(path, "engine"), "%s", msg)
		}
		if env.Region != "" {
			if msg := checkRegion(env.Region); msg != "" {
				return v.fail(join(path, "region"), "%s", msg)
			}
		}
		if env.Subnets != nil && len(env.Subnets) == 0 {
			return v.fail(join(path, "subnets"), "must be a non-empty list of strings")
		}
		seen := make(map[string]bool, len(env.Subnets))
		for i, id := range env.Subnets {
			f := index(join(path, "subnets"), i)
			if msg := checkSubnet(id); msg != "" {
				return v.fail(f, "%s", msg)
			}
			if seen[id] {
				return v.fail(f, "duplicate subnet %q", id)
			}
			seen[id] = true
		}
		if env.Cluster != "" {
			if msg := checkCluster(env.Cluster, env.Region); msg != "" {
				return v.fail(join(path, "cluster"), "%s", msg)
			}
		}
	}
	return nil
}

// Environment returns the environment named name, or an error naming the
// ones the spec has. name "" and "local" are the local engine: nil, nil.
func (s *Spec) Environment(name string) (*Environment, error) {
	if name == "" || name == EngineLocal {
		return nil, nil
	}
	if env, ok := s.Environments[name]; ok && env != nil {
		return env, nil
	}
	if len(s.Environments) == 0 {
		return nil, &Error{File: s.File, Field: "environments", Msg: fmt.Sprintf("no environment %q: the spec has no environments: block; add environments: {%s: {engine: aws}}", name, name)}
	}
	return nil, s.FieldError("environments", "no environment %q; environments are: %s", name, strings.Join(ordered(s.EnvironmentOrder, s.Environments), ", "))
}
