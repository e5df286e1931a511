package spec

import (
	"math"
	"regexp"

	"gopkg.in/yaml.v3"
)

// The keys each level of berth.yaml accepts, in the order docs/spec.md
// lists them; unknown-key errors print them in this order.
var (
	specKeys    = []string{"app", "environments", "services", "tasks", "edge"}
	serviceKeys = []string{"image", "build", "port", "command", "env", "secrets", "cpu", "memory", "pids", "platform",
		"instances", "scale", "health", "timeout", "release", "domains", "routes",
		"sticky", "drain", "slow_start", "max_concurrency", "sidecars", "depends_on", "apprunner"}
	buildKeys   = []string{"context", "dockerfile", "args"}
	scaleKeys   = []string{"min", "max", "concurrency"}
	healthKeys  = []string{"path", "interval", "timeout", "healthy", "unhealthy"}
	routeKeys   = []string{"path", "service"}
	sidecarKeys = []string{"image", "build", "command", "env", "secrets", "cpu", "memory", "pids", "essential", "depends_on"}
	taskKeys    = []string{"service", "command", "schedule"}
)

// exampleCommand shows the shape of a command in type errors.
const exampleCommand = `["./server", "work"]`

// The decoder checks every value it can judge on its own as it reads it, so
// the error points at that value's line; rules that relate two fields (image
// xor build, routes to other services, depends_on...) are left to Validate,
// which runs on the finished model.

// spec decodes the document's top-level mapping.
func (d *decoder) spec(root *yaml.Node) (*Spec, error) {
	root = deref(root)
	if root.Kind != yaml.MappingNode {
		return nil, d.errAt(root, "", "the spec must be a mapping with app: and services:, not %s", describe(root))
	}
	entries, err := d.mapping(root, "", specKeys)
	if err != nil {
		return nil, err
	}
	s := &Spec{File: d.file, Services: map[string]*Service{}, lines: d.lines}
	seen := map[string]bool{}
	for _, e := range entries {
		seen[e.key] = true
		d.mark(e.key, e.keyNode)
		switch e.key {
		case "app":
			if s.App, err = d.str(e.val, "app"); err != nil {
				return nil, err
			}
			if msg := checkName("app", s.App); msg != "" {
				return nil, d.errAt(e.val, "app", "%s", msg)
			}
		case "services":
			err = d.services(s, e)
		case "tasks":
			err = d.tasks(s, e)
		case "edge":
			err = d.edge(s, e)
		case "environments":
			err = d.environments(s, e)
		}
		if err != nil {
			return nil, err
		}
	}
	if !seen["app"] {
		return nil, d.errAt(root, "", `missing key "app": name the application, e.g. app: shop`)
	}
	if !seen["services"] {
		return nil, d.errAt(root, "", `missing key "services": a spec needs at least one service`)
	}
	return s, nil
}

// services decodes services: NAME: {...} in file order.
func (d *decoder) services(s *Spec, e entry) error {
	const path = "services"
	entries, err := d.mapping(e.val, path, nil)
	if err != nil {
		return err
	}
	if len(entries) == 0 {
		return d.errAt(e.keyNode, path, "needs at least one service")
	}
	for _, se := range entries {
		if msg := checkName("service", se.key); msg != "" {
			return d.errAt(se.keyNode, path, "%s", msg)
		}
		f := join(path, se.key)
		d.mark(f, se.keyNode)
		svc, err := d.service(se.key, se.val, f)
		if err != nil {
			return err
		}
		s.Services[se.key] = svc
		s.ServiceOrder = append(s.ServiceOrder, se.key)
	}
	return nil
}

// service decodes one service.
func (d *decoder) service(name string, n *yaml.Node, path string) (*Service, error) {
	entries, err := d.mapping(n, path, serviceKeys)
	if err != nil {
		return nil, err
	}
	svc := &Service{Name: name}
	var healthKey *yaml.Node
	for _, e := range entries {
		f := join(path, e.key)
		d.mark(f, e.keyNode)
		switch e.key {
		case "image":
			svc.Image, err = d.image(e.val, f)
		case "build":
			svc.Build, err = d.build(e.val, f)
		case "port":
			svc.Port, err = d.integer(e.val, f, 1, 65535)
		case "command":
			svc.Command, err = d.stringList(e.val, f, exampleCommand, true)
		case "env":
			svc.Env, err = d.scalarMap(e.val, f)
		case "secrets":
			svc.Secrets, err = d.secrets(e.val, f)
		case "cpu":
			svc.CPU, err = d.cpu(e.val, f)
		case "memory":
			svc.Memory, err = d.memory(e.val, f)
		case "platform":
			svc.Platform, err = d.platform(e.val, f)
		case "apprunner":
			svc.AppRunner, err = d.appRunnerARN(e.val, f)
		case "instances":
			svc.Instances, err = d.integer(e.val, f, 1, MaxInstances)
		case "scale":
			svc.Scale, err = d.scale(e.val, f)
		case "health":
			healthKey = e.keyNode
			svc.Health, err = d.health(e.val, f)
		case "timeout":
			svc.Timeout, err = d.duration(e.val, f)
		case "release":
			svc.Release, err = d.stringList(e.val, f, `["./server", "migrate"]`, true)
		case "domains":
			svc.Domains, err = d.domains(e.val, f)
		case "routes":
			svc.Routes, err = d.routes(e.val, f)
		case "sidecars":
			err = d.sidecars(svc, e.val, f)
		case "depends_on":
			svc.DependsOn, err = d.dependsOn(e.val, f)
		case "pids":
			svc.Pids, err = d.pids(e.val, f)
		case "sticky":
			svc.Sticky, err = d.sticky(e.val, f, name)
		case "drain":
			svc.Drain, err = d.duration(e.val, f)
		case "slow_start":
			svc.SlowStart, err = d.duration(e.val, f)
		case "max_concurrency":
			svc.MaxConcurrency, err = d.maxConcurrency(e.val, f)
		}
		if err != nil {
			return nil, err
		}
	}
	// Presence matters here and the model cannot show it (health defaults
	// are filled in), so this one cross-field rule is checked while decoding.
	if healthKey != nil && svc.Port == 0 {
		return nil, d.errAt(healthKey, join(path, "health"), "%s", msgHealthWorker)
	}
	return svc, nil
}

// image decodes an image reference.
func (d *decoder) image(n *yaml.Node, path string) (string, error) {
	ref, err := d.str(n, path)
	if err != nil {
		return "", err
	}
	if msg := checkImage(ref); msg != "" {
		return "", d.errAt(n, path, "%s", msg)
	}
	return ref, nil
}

// build decodes `build: DIR` or `build: {context, dockerfile, args}`.
func (d *decoder) build(n *yaml.Node, path string) (*Build, error) {
	n = deref(n)
	if n.Kind == yaml.ScalarNode && !isNull(n) {
		ctx, err := d.str(n, path)
		if err != nil {
			return nil, err
		}
		if ctx == "" {
			return nil, d.errAt(n, path, "must not be empty; use . for the spec's directory")
		}
		return &Build{Context: ctx}, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, d.errAt(n, path, "must be a build context directory or a mapping with context, dockerfile and args, not %s", describe(n))
	}
	entries, err := d.mapping(n, path, buildKeys)
	if err != nil {
		return nil, err
	}
	b := &Build{}
	hasContext := false
	for _, e := range entries {
		f := join(path, e.key)
		d.mark(f, e.keyNode)
		switch e.key {
		case "context":
			hasContext = true
			if b.Context, err = d.str(e.val, f); err == nil && b.Context == "" {
				err = d.errAt(e.val, f, "must not be empty; use . for the spec's directory")
			}
		case "dockerfile":
			if b.Dockerfile, err = d.str(e.val, f); err == nil && b.Dockerfile == "" {
				err = d.errAt(e.val, f, "must not be empty; omit it for %s", DefaultDockerfile)
			}
		case "args":
			b.Args, err = d.scalarMap(e.val, f)
		}
		if err != nil {
			return nil, err
		}
	}
	if !hasContext {
		return nil, d.errAt(n, join(path, "context"), "is required, e.g. context: .")
	}
	return b, nil
}

// secrets decodes a list of secret names.
func (d *decoder) secrets(n *yaml.Node, path string) ([]string, error) {
	names, err := d.stringList(n, path, "[DATABASE_URL, API_KEY]", false)
	if err != nil {
		return nil, err
	}
	items := deref(n).Content
	first := make(map[string]int, len(names))
	for i, name := range names {
		if msg := checkEnvName(name); msg != "" {
			return nil, d.errAt(items[i], index(path, i), "%s", msg)
		}
		if line, dup := first[name]; dup {
			return nil, d.errAt(items[i], index(path, i), "duplicate secret %q (also at line %d)", name, line)
		}
		first[name] = deref(items[i]).Line
	}
	return names, nil
}

// cpu decodes a vCPU limit.
func (d *decoder) cpu(n *yaml.Node, path string) (float64, error) {
	v, err := d.number(n, path)
	if err != nil {
		return 0, err
	}
	if msg := checkCPU(v); msg != "" {
		return 0, d.errAt(n, path, "%s", msg)
	}
	return v, nil
}

// memory decodes a memory limit such as 512MiB.
func (d *decoder) memory(n *yaml.Node, path string) (int64, error) {
	n = deref(n)
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case tagInt, tagFloat:
			// "memory: 512" is the classic mistake: bytes or megabytes?
			var v float64
			if n.Decode(&v) == nil && v > 0 {
				return 0, d.errAt(n, path, "%s", ErrSizeNoUnit.Error())
			}
			return 0, d.errAt(n, path, "%s", ErrSizeSyntax.Error())
		case tagStr:
			b, err := ParseSize(n.Value)
			if err != nil {
				e := d.errAt(n, path, "%s", sizeMsg(err))
				e.Err = err
				return 0, e
			}
			if msg := checkMemory(b); msg != "" {
				return 0, d.errAt(n, path, "%s", msg)
			}
			return b, nil
		}
	}
	return 0, d.errAt(n, path, "must be a size like 512MiB, not %s", describe(n))
}

// appRunnerARNRE is an App Runner service's ARN.
var appRunnerARNRE = regexp.MustCompile(`^arn:aws[a-z-]*:apprunner:[a-z0-9-]+:[0-9]{12}:service/[A-Za-z0-9][A-Za-z0-9_-]{3,39}/[0-9a-f]{32}$`)

// appRunnerARN decodes the ARN of an existing App Runner service.
func (d *decoder) appRunnerARN(n *yaml.Node, path string) (string, error) {
	s, err := d.str(n, path)
	if err != nil {
		return "", err
	}
	if !appRunnerARNRE.MatchString(s) {
		return "", d.errAt(n, path, "must be an App Runner service ARN (arn:aws:apprunner:REGION:ACCOUNT:service/NAME/ID), not %q; berth import apprunner writes it", s)
	}
	return s, nil
}

// platform decodes os/arch[/variant].
func (d *decoder) platform(n *yaml.Node, path string) (string, error) {
	p, err := d.str(n, path)
	if err != nil {
		return "", err
	}
	if msg := checkPlatform(p); msg != "" {
		return "", d.errAt(n, path, "%s", msg)
	}
	return p, nil
}

// scale decodes {min, max, concurrency}. Omitted fields take App Runner's
// defaults; an omitted max grows to min so that {min: 30} alone is valid.
func (d *decoder) scale(n *yaml.Node, path string) (*Scale, error) {
	entries, err := d.mapping(n, path, scaleKeys)
	if err != nil {
		return nil, err
	}
	sc := &Scale{Min: DefaultScaleMin, Concurrency: DefaultConcurrency}
	hasMax := false
	for _, e := range entries {
		f := join(path, e.key)
		d.mark(f, e.keyNode)
		switch e.key {
		case "min":
			sc.Min, err = d.integer(e.val, f, 0, MaxInstances)
		case "max":
			hasMax = true
			sc.Max, err = d.integer(e.val, f, 1, MaxInstances)
		case "concurrency":
			sc.Concurrency, err = d.integer(e.val, f, 1, MaxConcurrency)
		}
		if err != nil {
			return nil, err
		}
	}
	if !hasMax {
		sc.Max = max(DefaultScaleMax, sc.Min)
	}
	return sc, nil
}

// health decodes the health check; defaults are applied after decoding.
func (d *decoder) health(n *yaml.Node, path string) (Health, error) {
	var h Health
	entries, err := d.mapping(n, path, healthKeys)
	if err != nil {
		return h, err
	}
	for _, e := range entries {
		f := join(path, e.key)
		d.mark(f, e.keyNode)
		switch e.key {
		case "path":
			if h.Path, err = d.str(e.val, f); err == nil {
				if msg := checkPath(h.Path, true); msg != "" {
					err = d.errAt(e.val, f, "%s", msg)
				}
			}
		case "interval":
			h.Interval, err = d.duration(e.val, f)
		case "timeout":
			h.Timeout, err = d.duration(e.val, f)
		case "healthy":
			h.Healthy, err = d.integer(e.val, f, 1, math.MaxInt)
		case "unhealthy":
			h.Unhealthy, err = d.integer(e.val, f, 1, math.MaxInt)
		}
		if err != nil {
			return h, err
		}
	}
	return h, nil
}

// domains decodes the list of custom domains.
func (d *decoder) domains(n *yaml.Node, path string) ([]string, error) {
	names, err := d.stringList(n, path, "[shop.example.com]", false)
	if err != nil {
		return nil, err
	}
	items := deref(n).Content
	first := make(map[string]int, len(names))
	for i, name := range names {
		if msg := checkDomain(name); msg != "" {
			return nil, d.errAt(items[i], index(path, i), "%s", msg)
		}
		if line, dup := first[name]; dup {
			return nil, d.errAt(items[i], index(path, i), "duplicate domain %q (also at line %d)", name, line)
		}
		first[name] = deref(items[i]).Line
	}
	return names, nil
}

// routes decodes [{path, service}]. Whether service names a service with a
// port is for Validate, once every service is known.
func (d *decoder) routes(n *yaml.Node, path string) ([]Route, error) {
	n = deref(n)
	if isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, d.errAt(n, path, "must be a list of {path, service}, not %s", describe(n))
	}
	if err := d.visit(n, len(n.Content)); err != nil {
		return nil, err
	}
	routes := make([]Route, 0, len(n.Content))
	firstLine := map[string]int{}
	for i, item := range n.Content {
		f := index(path, i)
		d.mark(f, item)
		if deref(item).Kind != yaml.MappingNode {
			return nil, d.errAt(item, f, "must be a mapping with path and service, not %s", describe(deref(item)))
		}
		entries, err := d.mapping(item, f, routeKeys)
		if err != nil {
			return nil, err
		}
		var r Route
		has := map[string]bool{}
		for _, e := range entries {
			ef := join(f, e.key)
			d.mark(ef, e.keyNode)
			has[e.key] = true
			v, err := d.str(e.val, ef)
			if err != nil {
				return nil, err
			}
			var msg string
			switch e.key {
			case "path":
				r.Path, msg = v, checkPath(v, false)
			case "service":
				r.Service, msg = v, checkName("service", v)
			}
			if msg != "" {
				return nil, d.errAt(e.val, ef, "%s", msg)
			}
		}
		for _, k := range routeKeys {
			if !has[k] {
				return nil, d.errAt(item, join(f, k), "is required")
			}
		}
		if line, dup := firstLine[r.Path]; dup {
			return nil, d.errAt(item, join(f, "path"), "duplicate route path %q (also at line %d)", r.Path, line)
		}
		firstLine[r.Path] = deref(item).Line
		routes = append(routes, r)
	}
	return routes, nil
}

// sidecars decodes sidecars: NAME: {...} into svc.
func (d *decoder) sidecars(svc *Service, n *yaml.Node, path string) error {
	entries, err := d.mapping(n, path, nil)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if msg := checkName("sidecar", e.key); msg != "" {
			return d.errAt(e.keyNode, path, "%s", msg)
		}
		f := join(path, e.key)
		d.mark(f, e.keyNode)
		sc, err := d.sidecar(e.key, e.val, f)
		if err != nil {
			return err
		}
		if svc.Sidecars == nil {
			svc.Sidecars = map[string]*Sidecar{}
		}
		svc.Sidecars[e.key] = sc
		svc.SidecarOrder = append(svc.SidecarOrder, e.key)
	}
	return nil
}

// sidecar decodes one sidecar. Essential defaults to true, as in ECS: a
// sidecar that dies takes its instance with it unless it says otherwise.
func (d *decoder) sidecar(name string, n *yaml.Node, path string) (*Sidecar, error) {
	entries, err := d.mapping(n, path, sidecarKeys)
	if err != nil {
		return nil, err
	}
	sc := &Sidecar{Name: name, Essential: true}
	for _, e := range entries {
		f := join(path, e.key)
		d.mark(f, e.keyNode)
		switch e.key {
		case "image":
			sc.Image, err = d.image(e.val, f)
		case "build":
			sc.Build, err = d.build(e.val, f)
		case "command":
			sc.Command, err = d.stringList(e.val, f, exampleCommand, true)
		case "env":
			sc.Env, err = d.scalarMap(e.val, f)
		case "secrets":
			sc.Secrets, err = d.secrets(e.val, f)
		case "cpu":
			sc.CPU, err = d.cpu(e.val, f)
		case "memory":
			sc.Memory, err = d.memory(e.val, f)
		case "pids":
			sc.Pids, err = d.pids(e.val, f)
		case "essential":
			sc.Essential, err = d.boolean(e.val, f)
		case "depends_on":
			sc.DependsOn, err = d.dependsOn(e.val, f)
		}
		if err != nil {
			return nil, err
		}
	}
	return sc, nil
}

// dependsOn decodes {container: condition}. Which containers exist is for
// Validate.
func (d *decoder) dependsOn(n *yaml.Node, path string) (map[string]Condition, error) {
	entries, err := d.mapping(n, path, nil)
	if err != nil {
		return nil, err
	}
	deps := make(map[string]Condition, len(entries))
	for _, e := range entries {
		f := join(path, e.key)
		d.mark(f, e.keyNode)
		v, err := d.str(e.val, f)
		if err != nil {
			return nil, err
		}
		if msg := checkCondition(Condition(v)); msg != "" {
			return nil, d.errAt(e.val, f, "%s", msg)
		}
		deps[e.key] = Condition(v)
	}
	return deps, nil
}

// tasks decodes tasks: NAME: {...} in file order.
func (d *decoder) tasks(s *Spec, e entry) error {
	return namedSection(d, e, "tasks", "task", d.task, func(name string, t *Task) {
		if s.Tasks == nil {
			s.Tasks = map[string]*Task{}
		}
		s.Tasks[name] = t
		s.TaskOrder = append(s.TaskOrder, name)
	})
}

// namedSection decodes a mapping of named entries (tasks:, edge:): each name
// is checked as a kind's name, decoded by one, and handed to add in file
// order.
func namedSection[T any](d *decoder, e entry, path, kind string, one func(name string, n *yaml.Node, path string) (T, error), add func(name string, v T)) error {
	entries, err := d.mapping(e.val, path, nil)
	if err != nil {
		return err
	}
	for _, ne := range entries {
		if msg := checkName(kind, ne.key); msg != "" {
			return d.errAt(ne.keyNode, path, "%s", msg)
		}
		f := join(path, ne.key)
		d.mark(f, ne.keyNode)
		v, err := one(ne.key, ne.val, f)
		if err != nil {
			return err
		}
		add(ne.key, v)
	}
	return nil
}

// task decodes one named task.
func (d *decoder) task(name string, n *yaml.Node, path string) (*Task, error) {
	entries, err := d.mapping(n, path, taskKeys)
	if err != nil {
		return nil, err
	}
	t := &Task{Name: name}
	for _, e := range entries {
		f := join(path, e.key)
		d.mark(f, e.keyNode)
		switch e.key {
		case "service":
			if t.Service, err = d.str(e.val, f); err == nil {
				if msg := checkName("service", t.Service); msg != "" {
					err = d.errAt(e.val, f, "%s", msg)
				}
			}
		case "command":
			t.Command, err = d.stringList(e.val, f, exampleCommand, true)
		case "schedule":
			if t.Schedule, err = d.str(e.val, f); err == nil {
				if msg, cause := checkSchedule(t.Schedule); msg != "" {
					perr := d.errAt(e.val, f, "%s", msg)
					perr.Err = cause
					err = perr
				}
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return t, nil
}
