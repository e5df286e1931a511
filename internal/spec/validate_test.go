package spec

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// codeSpec is a valid spec built in code, as another package might build
// one; Validate must judge it without any line information.
func codeSpec() *Spec {
	health := Health{Interval: time.Second, Timeout: 2 * time.Second, Healthy: 1, Unhealthy: 3}
	return &Spec{
		App: "shop",
		Services: map[string]*Service{
			"web": {
				Name: "web", Image: "shop-web:1.4", Port: 8080, Instances: 1,
				Health: health, Timeout: DefaultRequestTimeout,
				Routes: []Route{{Path: "/api", Service: "api"}},
				Sidecars: map[string]*Sidecar{
					"proxy": {Name: "proxy", Image: "envoy:1", Essential: true, DependsOn: map[string]Condition{"web": ConditionHealthy}},
				},
			},
			"api": {Name: "api", Image: "shop-api:1.4", Port: 9090, Instances: 1, Health: health, Timeout: DefaultRequestTimeout},
		},
		Tasks: map[string]*Task{
			"migrate": {Name: "migrate", Service: "web", Command: []string{"./migrate"}},
		},
	}
}

func TestValidateCodeSpec(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(s *Spec)
		want   string // "" means valid
	}{
		{"valid as built", func(*Spec) {}, ""},
		{"no order recorded still checks in sorted order", func(s *Spec) {
			s.Services["web"].Timeout = 0
			s.Services["api"].Timeout = 0
		}, "services.api.timeout: must be greater than 0, e.g. 30s"},
		{"image override to a bad reference", func(s *Spec) { s.Services["web"].Image = "Shop Web" },
			`services.web.image: invalid image reference "Shop Web": must not contain spaces`},
		{"both image and build", func(s *Spec) { s.Services["api"].Build = &Build{Context: ".", Dockerfile: "Dockerfile"} },
			"services.api: has both image and build; use image for an image the engine has, or build to build one, not both"},
		{"defaults not applied", func(s *Spec) { s.Services["api"].Health.Interval = 0 },
			"services.api.health.interval: must be greater than 0, e.g. 30s"},
		{"instances and scale", func(s *Spec) { s.Services["api"].Scale = &Scale{Min: 1, Max: 2, Concurrency: 10} },
			"services.api.scale: cannot be used together with instances: set a fixed instances count or scale, not both"},
		{"name does not match key", func(s *Spec) { s.Services["api"].Name = "apy" },
			`services.api: name "apy" does not match its key "api"`},
		{"nil service", func(s *Spec) { s.Services["api"] = nil }, "services.api: is empty; it needs image or build"},
		{"no services", func(s *Spec) { s.Services = nil }, "services: needs at least one service"},
		{"bad app", func(s *Spec) { s.App = "" },
			`app: invalid app name "": use 1-40 characters of a-z, 0-9 and '-', starting and ending with a letter or digit`},
		{"health path on a worker", func(s *Spec) {
			s.Services["api"].Port = 0
			s.Services["web"].Routes = nil
			s.Services["api"].Health.Path = "/healthz"
		}, "services.api.health: needs a port: a service without a port is a worker, and there is nothing to check"},
		{"memory below Docker's minimum", func(s *Spec) { s.Services["api"].Memory = 1 << 20 },
			"services.api.memory: must be at least 6MiB (Docker refuses less)"},
		{"negative cpu", func(s *Spec) { s.Services["api"].CPU = -1 },
			"services.api.cpu: must be a number of vCPUs greater than 0, e.g. 0.5"},
		{"empty release", func(s *Spec) { s.Services["api"].Release = []string{} },
			"services.api.release: must be a non-empty list of strings"},
		{"sidecar healthy on a sidecar", func(s *Spec) {
			s.Services["web"].Sidecars["db"] = &Sidecar{Name: "db", Image: "db:1", Essential: true}
			s.Services["web"].Sidecars["proxy"].DependsOn = map[string]Condition{"db": ConditionHealthy}
		}, `services.web.sidecars.proxy.depends_on.db: "healthy" needs a health check, and sidecar "db" has none; use start, complete or success`},
		{"two-sidecar cycle", func(s *Spec) {
			s.Services["web"].Sidecars["a"] = &Sidecar{Name: "a", Image: "a:1", Essential: true, DependsOn: map[string]Condition{"proxy": ConditionStart}}
			s.Services["web"].Sidecars["proxy"].DependsOn = map[string]Condition{"a": ConditionStart}
		}, "services.web.sidecars.a.depends_on: dependency cycle: a -> proxy -> a"},
		{"bad condition", func(s *Spec) { s.Services["web"].Sidecars["proxy"].DependsOn["web"] = "ready" },
			`services.web.sidecars.proxy.depends_on.web: unknown condition "ready"; use start, healthy, complete or success`},
		{"task without command", func(s *Spec) { s.Tasks["migrate"].Command = nil },
			`tasks.migrate.command: is required: a non-empty list of strings, e.g. ["./server", "migrate"]`},
		{"task bad schedule", func(s *Spec) { s.Tasks["migrate"].Schedule = "0 25 * * *" },
			`tasks.migrate.schedule: invalid schedule "0 25 * * *": end of range (25) above maximum (23): 25`},
		{"nil task", func(s *Spec) { s.Tasks["migrate"] = nil }, "tasks.migrate: is empty; it needs service and command"},
		{"NUL in an env value", func(s *Spec) { s.Services["api"].Env = map[string]string{"GREETING": "hi\x00there"} },
			`services.api.env.GREETING: ` + msgNUL},
		{"NUL in a command", func(s *Spec) { s.Services["api"].Command = []string{"./api", "a\x00"} },
			`services.api.command[1]: ` + msgNUL},
		{"NUL in a sidecar's env", func(s *Spec) { s.Services["web"].Sidecars["proxy"].Env = map[string]string{"X": "\x00"} },
			`services.web.sidecars.proxy.env.X: ` + msgNUL},
		{"NUL in a release command", func(s *Spec) { s.Services["api"].Release = []string{"\x00"} },
			`services.api.release[0]: ` + msgNUL},
		{"NUL in a task command", func(s *Spec) { s.Tasks["migrate"].Command = []string{"./migrate", "\x00"} },
			`tasks.migrate.command[1]: ` + msgNUL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := codeSpec()
			tt.mutate(s)
			err := s.Validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			var perr *Error
			require.ErrorAs(t, err, &perr)
			assert.Zero(t, perr.Line, "a spec built in code has no lines")
			assert.Equal(t, tt.want, err.Error())
		})
	}
}

// TestSpecLine checks that checks made outside the package (the daemon's
// memory, hosts held by other apps) can point at the line as Validate does.
func TestSpecLine(t *testing.T) {
	s, err := Parse("berth.yaml", []byte("app: shop\nservices:\n  web:\n    image: web:1\n    port: 8080\n    memory: 1GiB\n    domains: [a.example.com, b.example.com]\n"))
	require.NoError(t, err)
	tests := []struct {
		field string
		want  int
	}{
		{"services.web.memory", 6},
		{"services.web.domains[1]", 7},
		{"services.web.cpu", 3}, // not written: its service's line
		{"edge.www.hosts[0]", 0},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			assert.Equal(t, tt.want, s.Line(tt.field))
		})
	}
	assert.EqualError(t, s.FieldError("services.web.memory", "%s is too much", "1GiB"), "berth.yaml:6: services.web.memory: 1GiB is too much")
	assert.Zero(t, codeSpec().Line("services.web.memory"))
}

// TestValidateAfterParseKeepsLines checks that a parsed spec, changed and
// validated again (as an --image override does), still names the line.
func TestValidateAfterParseKeepsLines(t *testing.T) {
	s, err := Parse("berth.yaml", []byte("app: shop\nservices:\n  web:\n    image: web:1\n    port: 8080\n"))
	require.NoError(t, err)
	s.Services["web"].Image = "Web:2"
	err = s.Validate()
	require.EqualError(t, err, `berth.yaml:4: services.web.image: invalid image reference "Web:2": the repository name "Web" must be lowercase`)
}

func TestCheckImage(t *testing.T) {
	tests := []struct {
		ref string
		ok  bool
	}{
		{"shop-web:1.4", true},
		{"shop_web", true},
		{"library/busybox:1.36", true},
		{"localhost:5000/shop/web", true},
		{"registry.example.com/a/b/c:v1.2.3-rc.1", true},
		{"Registry.Example.com/shop/web:1", true},
		{"web@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", true},
		{"web:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", true},
		{"shop--web:1", true},
		{"Shop:1", false},
		{"shop/Web:1", false},
		{"shop web", false},
		{"shop:", false},
		{":1", false},
		{"-shop", false},
		{"shop-:1", false},
		{"shop:1:2", false},
		{"shop@sha256:abc", false},
		{"/shop", false},
		{"shop/", false},
		{"shop:-bad", false},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			msg := checkImage(tt.ref)
			if tt.ok {
				assert.Empty(t, msg)
			} else {
				assert.NotEmpty(t, msg)
			}
		})
	}
}

func TestCheckDomainAndPlatform(t *testing.T) {
	tests := []struct {
		name  string
		check func(string) string
		in    string
		ok    bool
	}{
		{"domain", checkDomain, "shop.example.com", true},
		{"domain idn", checkDomain, "xn--bcher-kva.example", true},
		{"domain single label", checkDomain, "localhost", false},
		{"domain trailing dot", checkDomain, "shop.example.com.", false},
		{"domain leading dash", checkDomain, "-shop.example.com", false},
		{"domain label too long", checkDomain, "a234567890123456789012345678901234567890123456789012345678901234.com", false},
		{"domain port", checkDomain, "shop.example.com:443", false},
		{"platform", checkPlatform, "linux/arm64", true},
		{"platform variant", checkPlatform, "linux/arm/v7", true},
		{"platform arm64 variant", checkPlatform, "linux/arm64/v8", true},
		{"platform amd64 level", checkPlatform, "linux/amd64/v3", true},
		{"platform no variants", checkPlatform, "linux/386/v1", false},
		{"platform too many parts", checkPlatform, "linux/arm/v7/x", false},
		{"platform empty arch", checkPlatform, "linux/", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.ok {
				assert.Empty(t, tt.check(tt.in))
			} else {
				assert.NotEmpty(t, tt.check(tt.in))
			}
		})
	}
}
