package apprunner

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apprunner"
	"github.com/aws/aws-sdk-go-v2/service/apprunner/types"
	"gopkg.in/yaml.v3"

	"github.com/berth-dev/berth/internal/spec"
)

// Imported is an App Runner service read as a berth service.
type Imported struct {
	// Service is the berth service, as spec.Parse reads YAML (defaults
	// applied), with AppRunner set to the service's ARN.
	Service *spec.Service
	// YAML is the service's block, "NAME:\n  image: ...\n", with comments
	// saying what berth.yaml has no key for; AddToSpec puts it under
	// services:.
	YAML string
	// Secrets maps each secret's variable name to the Secrets Manager or
	// SSM Parameter Store ARN App Runner reads it from (the YAML notes it
	// beside each name); deploys keep these references.
	Secrets map[string]string
	// URL is the service's default domain, https://...
	URL string
	// Notes say what the service has that berth.yaml does not carry and
	// deploys leave as it is (observability, the instance role, networking).
	Notes []string

	node *yaml.Node // the block's value, for AddToSpec
}

// invalidName is what a berth service name cannot hold.
var invalidName = regexp.MustCompile(`[^a-z0-9-]+`)

// ServiceName is the berth service name for an App Runner service name:
// lowercase, '_' and other characters as '-', at most 40 characters.
func ServiceName(appRunnerName string) string {
	n := invalidName.ReplaceAllString(strings.ToLower(appRunnerName), "-")
	if len(n) > 40 {
		n = n[:40]
	}
	return strings.Trim(n, "-")
}

// Import reads the App Runner service arn (its image, port, start command,
// env, secret references, cpu/memory, health check, auto scaling and
// observability) as a berth service named name ("": ServiceName of the App
// Runner service's name). It changes nothing in AWS.
func (r *Runner) Import(ctx context.Context, arn, name string) (*Imported, error) {
	svc, err := r.describe(ctx, arn)
	if err != nil {
		return nil, err
	}
	arName := aws.ToString(svc.ServiceName)
	if name == "" {
		name = ServiceName(arName)
	}
	sc := svc.SourceConfiguration
	if sc == nil || sc.ImageRepository == nil {
		return nil, fmt.Errorf("App Runner service %s is built from source code, not an image: berth runs images; switch it to an ECR image first", arName)
	}
	imp := &Imported{Secrets: map[string]string{}}
	if u := aws.ToString(svc.ServiceUrl); u != "" {
		imp.URL = "https://" + u
	}
	m := &yaml.Node{Kind: yaml.MappingNode}
	m.HeadComment = fmt.Sprintf("imported from App Runner service %s (%s)", arName, imp.URL)
	// put adds key: v and returns the key's node, for comments.
	put := func(key string, v *yaml.Node) *yaml.Node {
		k := scalar(key)
		m.Content = append(m.Content, k, v)
		return k
	}
	ir := sc.ImageRepository
	put("image", scalar(aws.ToString(ir.ImageIdentifier)))
	ic := ir.ImageConfiguration
	if ic == nil {
		ic = &types.ImageConfiguration{}
	}
	port := aws.ToString(ic.Port)
	if port == "" {
		port = "8080" // App Runner's default
	}
	if _, err := strconv.Atoi(port); err != nil {
		return nil, fmt.Errorf("App Runner service %s: port %q is not a number", arName, port)
	}
	put("port", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: port})
	if cmd := aws.ToString(ic.StartCommand); cmd != "" {
		seq := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for _, w := range splitCommand(cmd) {
			seq.Content = append(seq.Content, scalar(w))
		}
		put("command", seq)
	}
	if len(ic.RuntimeEnvironmentVariables) > 0 {
		env := &yaml.Node{Kind: yaml.MappingNode}
		for _, k := range sortedKeys(ic.RuntimeEnvironmentVariables) {
			env.Content = append(env.Content, scalar(k), scalar(ic.RuntimeEnvironmentVariables[k]))
		}
		put("env", env)
	}
	if len(ic.RuntimeEnvironmentSecrets) > 0 {
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for _, k := range sortedKeys(ic.RuntimeEnvironmentSecrets) {
			ref := ic.RuntimeEnvironmentSecrets[k]
			imp.Secrets[k] = ref
			item := scalar(k)
			item.LineComment = ref
			seq.Content = append(seq.Content, item)
		}
		put("secrets", seq).HeadComment = "App Runner reads each from the ARN beside it; deploys keep these references"
	}
	if inst := svc.InstanceConfiguration; inst != nil {
		if c := aws.ToString(inst.Cpu); c != "" {
			cpu, err := parseCPU(c)
			if err != nil {
				return nil, err
			}
			tag := "!!float"
			if cpu == float64(int(cpu)) {
				tag = "!!int"
			}
			put("cpu", &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: strconv.FormatFloat(cpu, 'f', -1, 64)})
		}
		if mem := aws.ToString(inst.Memory); mem != "" {
			b, err := parseMemory(mem)
			if err != nil {
				return nil, err
			}
			put("memory", scalar(spec.FormatSize(b)))
		}
		if role := aws.ToString(inst.InstanceRoleArn); role != "" {
			imp.Notes = append(imp.Notes, "instance role "+role+" (kept by deploys)")
		}
	}
	if s := svc.AutoScalingConfigurationSummary; s != nil && s.AutoScalingConfigurationArn != nil {
		out, err := r.api.DescribeAutoScalingConfiguration(ctx, &apprunner.DescribeAutoScalingConfigurationInput{AutoScalingConfigurationArn: s.AutoScalingConfigurationArn})
		if err != nil {
			return nil, fmt.Errorf("App Runner DescribeAutoScalingConfiguration %s: %w", aws.ToString(s.AutoScalingConfigurationArn), err)
		}
		a := out.AutoScalingConfiguration
		scale := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
		scale.Content = append(scale.Content,
			scalar("min"), intNode(int(aws.ToInt32(a.MinSize))),
			scalar("max"), intNode(int(aws.ToInt32(a.MaxSize))),
			scalar("concurrency"), intNode(int(aws.ToInt32(a.MaxConcurrency))))
		put("scale", scale).HeadComment = fmt.Sprintf("App Runner auto scaling configuration %s revision %d",
			aws.ToString(a.AutoScalingConfigurationName), aws.ToInt32(a.AutoScalingConfigurationRevision))
	}
	if h := svc.HealthCheckConfiguration; h != nil {
		hn := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
		if h.Protocol == types.HealthCheckProtocolHttp {
			p := aws.ToString(h.Path)
			if p == "" {
				p = "/"
			}
			hn.Content = append(hn.Content, scalar("path"), scalar(p))
		}
		// App Runner's defaults: 5s, 2s, 1, 5.
		hn.Content = append(hn.Content,
			scalar("interval"), scalar(seconds(h.Interval, 5)),
			scalar("timeout"), scalar(seconds(h.Timeout, 2)),
			scalar("healthy"), intNode(int(orDefault(h.HealthyThreshold, 1))),
			scalar("unhealthy"), intNode(int(orDefault(h.UnhealthyThreshold, 5))))
		put("health", hn)
	}
	if o := svc.ObservabilityConfiguration; o != nil && o.ObservabilityEnabled {
		imp.Notes = append(imp.Notes, "observability (X-Ray tracing) on with "+aws.ToString(o.ObservabilityConfigurationArn)+" (kept by deploys)")
	} else {
		imp.Notes = append(imp.Notes, "observability (tracing) off (kept by deploys)")
	}
	if n := svc.NetworkConfiguration; n != nil && n.EgressConfiguration != nil && n.EgressConfiguration.EgressType == types.EgressTypeVpc {
		imp.Notes = append(imp.Notes, "outgoing traffic through VPC connector "+aws.ToString(n.EgressConfiguration.VpcConnectorArn)+" (kept by deploys)")
	}
	put("apprunner", scalar(arn)).HeadComment = "App Runner keeps: " + strings.Join(imp.Notes, "; ")

	imp.node = m
	doc := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{scalar(name), m}}
	text, err := encode(doc, 2)
	if err != nil {
		return nil, err
	}
	imp.YAML = text
	// Read back as berth reads it: the block is valid, and Service is what
	// a deploy of the written berth.yaml will get.
	sp, err := spec.Parse("App Runner service "+arName, []byte("app: imported\nservices:\n"+indent(text, "  ")))
	if err != nil {
		return nil, fmt.Errorf("App Runner service %s does not fit berth.yaml: %w", arName, err)
	}
	imp.Service = sp.Services[name]
	return imp, nil
}

// AddToSpec adds the imported service under services: of the berth.yaml
// text and returns the new text: the rest keeps its keys, order and
// comments. A service of that name already there is refused.
func AddToSpec(text []byte, imp *Imported) ([]byte, error) {
	name := imp.Service.Name
	var doc yaml.Node
	if err := yaml.Unmarshal(text, &doc); err != nil {
		return nil, fmt.Errorf("berth.yaml: %w", err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		doc = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode}}}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("berth.yaml: the top level is not a map of keys; fix it, then import again")
	}
	var services *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "services" {
			services = root.Content[i+1]
		}
	}
	if services == nil || (services.Kind == yaml.ScalarNode && services.Tag == "!!null") {
		if services == nil {
			services = &yaml.Node{Kind: yaml.MappingNode}
			root.Content = append(root.Content, scalar("services"), services)
		} else {
			*services = yaml.Node{Kind: yaml.MappingNode}
		}
	}
	if services.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("berth.yaml:%d: services: is not a map of services; fix it, then import again", services.Line)
	}
	for i := 0; i < len(services.Content); i += 2 {
		if services.Content[i].Value == name {
			return nil, fmt.Errorf("berth.yaml:%d: service %s exists already; import under another name (--name) or remove it first", services.Content[i].Line, name)
		}
	}
	services.Style = 0 // a flow map {} becomes a block to take a block
	services.Content = append(services.Content, scalar(name), imp.node)
	return encodeIndent(&doc, indentOf(text))
}

// indentOf is the indentation text uses: the column of the first indented
// key (2 when none).
func indentOf(text []byte) int {
	for _, line := range bytes.Split(text, []byte("\n")) {
		trimmed := bytes.TrimLeft(line, " ")
		if n := len(line) - len(trimmed); n > 0 && len(trimmed) > 0 && trimmed[0] != '#' && trimmed[0] != '-' {
			return n
		}
	}
	return 2
}

func encodeIndent(n *yaml.Node, spaces int) ([]byte, error) {
	s, err := encode(n, spaces)
	return []byte(s), err
}

func encode(n *yaml.Node, spaces int) (string, error) {
	var b bytes.Buffer
	e := yaml.NewEncoder(&b)
	e.SetIndent(spaces)
	if err := e.Encode(n); err != nil {
		return "", err
	}
	if err := e.Close(); err != nil {
		return "", err
	}
	return b.String(), nil
}

func indent(text, prefix string) string {
	lines := strings.SplitAfter(text, "\n")
	for i, l := range lines {
		if l != "" && l != "\n" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "")
}

func scalar(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v} }

func intNode(v int) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(v)}
}

func seconds(v *int32, def int32) string {
	return (time.Duration(orDefault(v, def)) * time.Second).String()
}

func orDefault(v *int32, def int32) int32 {
	if v == nil {
		return def
	}
	return *v
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
