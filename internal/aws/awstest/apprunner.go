package awstest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// AppRunner is an in-memory AWS App Runner behind a Proxy: moto 5.2.1 has
// none. It answers every "apprunner:*" call itself in App Runner's wire
// protocol (awsJson1_0, X-Amz-Target AppRunner.<Op>, errors with __type and
// Message), so the real aws-sdk-go-v2 client and the aws CLI both parse it.
//
// It models services made from an image (not from source code), their
// auto scaling configurations, tags and operations:
//
//	CreateService ─▶ OPERATION_IN_PROGRESS ─(Polls DescribeService polls)─▶ RUNNING
//	UpdateService / StartDeployment ─▶ OPERATION_IN_PROGRESS ─▶ RUNNING, with the
//	    new configuration (operation SUCCEEDED), or, after FailNextDeployment,
//	    with the previous one (ROLLBACK_IN_PROGRESS for a poll, then ROLLBACK_SUCCEEDED)
//	PauseService ─▶ OPERATION_IN_PROGRESS ─▶ PAUSED ─ResumeService─▶ … ─▶ RUNNING
//	DeleteService ─▶ OPERATION_IN_PROGRESS ─▶ DELETED
//
// While an operation is in progress DescribeService shows the configuration
// that serves (the previous one), and any other mutating call is refused
// with InvalidStateException, as App Runner refuses it. The operations
// served, and every member written, exist in botocore's App Runner model
// (apprunner_test.go checks it).
type AppRunner struct {
	mu       sync.Mutex
	account  string
	region   string // of the call being answered, from its signature
	polls    int
	failNext string
	services map[string]*arService // by ARN
	order    []string
	ascs     map[string]*arASC // by ARN
	tags     map[string][]arTag
	ops      map[string][]*arOperation // by service ARN, newest first
	answers  []AppRunnerAnswer
	faults   map[string]*arFault
}

// arFault answers the next n calls of an operation with an error.
type arFault struct {
	n      int
	status int
	code   string
}

// AppRunnerAnswer is one answer the fake gave: its operation and body.
type AppRunnerAnswer struct {
	Action string
	Status int
	Body   []byte
}

// AppRunnerOperations are the App Runner operations the fake serves.
var AppRunnerOperations = []string{
	"CreateService", "DescribeService", "ListServices", "UpdateService",
	"PauseService", "ResumeService", "DeleteService", "ListOperations",
	"StartDeployment", "DescribeAutoScalingConfiguration",
	"CreateAutoScalingConfiguration", "TagResource", "ListTagsForResource",
}

// AppRunnerAccount is the account in the ARNs the fake makes (moto's).
const AppRunnerAccount = "123456789012"

// DefaultAppRunnerPolls is how many DescribeService polls an operation stays
// in progress unless SetPolls says otherwise.
const DefaultAppRunnerPolls = 2

// SimulateAppRunner installs the App Runner fake on p: every apprunner call
// is answered by it, never by moto. A hook set with p.Handle for an exact
// operation ("apprunner:UpdateService") replaces the fake for that
// operation (what it lets through goes to moto, which has no App Runner):
// use Fail on the fake for errors.
func SimulateAppRunner(t testing.TB, p *Proxy) *AppRunner {
	t.Helper()
	s := &AppRunner{
		account:  AppRunnerAccount,
		region:   Region,
		polls:    DefaultAppRunnerPolls,
		services: map[string]*arService{},
		ascs:     map[string]*arASC{},
		tags:     map[string][]arTag{},
		ops:      map[string][]*arOperation{},
		faults:   map[string]*arFault{},
	}
	def := s.newASC("DefaultConfiguration", 100, 1, 25)
	def.IsDefault = true
	p.Handle("apprunner:*", s.serve)
	return s
}

// SetPolls sets how many DescribeService polls of a service an operation
// started from now on stays in progress (0: done at the first poll).
func (s *AppRunner) SetPolls(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.polls = n
}

// FailNextDeployment makes the next UpdateService or StartDeployment fail:
// its operation ends ROLLBACK_SUCCEEDED and the service keeps serving its
// previous configuration, as App Runner rolls back a deployment whose
// instances never pass their health check. why is kept for Failures.
func (s *AppRunner) FailNextDeployment(why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if why == "" {
		why = "health check failed"
	}
	s.failNext = why
}

// Fail makes the next n calls of the App Runner operation action
// ("DescribeService") answer the error code (such as "ThrottlingException",
// retried by the SDK, or "AccessDeniedException") with the HTTP status,
// before the fake looks at them.
func (s *AppRunner) Fail(action string, n, status int, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[action] = &arFault{n: n, status: status, code: code}
}

// ServingImage is the image the service serves now (its configuration's
// ImageIdentifier), or "" when there is no such service.
func (s *AppRunner) ServingImage(arn string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	svc := s.services[arn]
	if svc == nil || svc.SourceConfiguration.ImageRepository == nil {
		return ""
	}
	return svc.SourceConfiguration.ImageRepository.ImageIdentifier
}

// Answers lists every answer the fake gave, in order.
func (s *AppRunner) Answers() []AppRunnerAnswer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]AppRunnerAnswer(nil), s.answers...)
}

// The model, with the members and JSON names of botocore's shapes.

type arService struct {
	ServiceName                     string           `json:"ServiceName"`
	ServiceID                       string           `json:"ServiceId"`
	ServiceArn                      string           `json:"ServiceArn"`
	ServiceURL                      string           `json:"ServiceUrl,omitempty"`
	CreatedAt                       float64          `json:"CreatedAt"`
	UpdatedAt                       float64          `json:"UpdatedAt"`
	DeletedAt                       float64          `json:"DeletedAt,omitempty"`
	Status                          string           `json:"Status"`
	SourceConfiguration             arSource         `json:"SourceConfiguration"`
	InstanceConfiguration           arInstance       `json:"InstanceConfiguration"`
	HealthCheckConfiguration        *arHealth        `json:"HealthCheckConfiguration,omitempty"`
	AutoScalingConfigurationSummary arASCSummary     `json:"AutoScalingConfigurationSummary"`
	NetworkConfiguration            arNetwork        `json:"NetworkConfiguration"`
	ObservabilityConfiguration      *arObservability `json:"ObservabilityConfiguration,omitempty"`
	EncryptionConfiguration         map[string]any   `json:"EncryptionConfiguration,omitempty"`
	pending                         *arService       // the configuration an operation in progress would apply
}

type arSource struct {
	ImageRepository             *arImageRepository `json:"ImageRepository,omitempty"`
	AutoDeploymentsEnabled      *bool              `json:"AutoDeploymentsEnabled,omitempty"`
	AuthenticationConfiguration *arAuthentication  `json:"AuthenticationConfiguration,omitempty"`
}

type arImageRepository struct {
	ImageIdentifier     string         `json:"ImageIdentifier"`
	ImageConfiguration  *arImageConfig `json:"ImageConfiguration,omitempty"`
	ImageRepositoryType string         `json:"ImageRepositoryType"`
}

type arImageConfig struct {
	RuntimeEnvironmentVariables map[string]string `json:"RuntimeEnvironmentVariables,omitempty"`
	StartCommand                string            `json:"StartCommand,omitempty"`
	Port                        string            `json:"Port,omitempty"`
	RuntimeEnvironmentSecrets   map[string]string `json:"RuntimeEnvironmentSecrets,omitempty"`
}

type arAuthentication struct {
	ConnectionArn string `json:"ConnectionArn,omitempty"`
	AccessRoleArn string `json:"AccessRoleArn,omitempty"`
}

type arInstance struct {
	CPU             string `json:"Cpu,omitempty"`
	Memory          string `json:"Memory,omitempty"`
	InstanceRoleArn string `json:"InstanceRoleArn,omitempty"`
}

type arHealth struct {
	Protocol           string `json:"Protocol,omitempty"`
	Path               string `json:"Path,omitempty"`
	Interval           *int   `json:"Interval,omitempty"`
	Timeout            *int   `json:"Timeout,omitempty"`
	HealthyThreshold   *int   `json:"HealthyThreshold,omitempty"`
	UnhealthyThreshold *int   `json:"UnhealthyThreshold,omitempty"`
}

type arASCSummary struct {
	AutoScalingConfigurationArn      string  `json:"AutoScalingConfigurationArn"`
	AutoScalingConfigurationName     string  `json:"AutoScalingConfigurationName"`
	AutoScalingConfigurationRevision int     `json:"AutoScalingConfigurationRevision"`
	Status                           string  `json:"Status"`
	CreatedAt                        float64 `json:"CreatedAt"`
	HasAssociatedService             bool    `json:"HasAssociatedService"`
	IsDefault                        bool    `json:"IsDefault"`
}

type arNetwork struct {
	EgressConfiguration  map[string]any `json:"EgressConfiguration"`
	IngressConfiguration map[string]any `json:"IngressConfiguration"`
	IPAddressType        string         `json:"IpAddressType"`
}

type arObservability struct {
	ObservabilityEnabled          bool   `json:"ObservabilityEnabled"`
	ObservabilityConfigurationArn string `json:"ObservabilityConfigurationArn,omitempty"`
}

type arASC struct {
	AutoScalingConfigurationArn      string  `json:"AutoScalingConfigurationArn"`
	AutoScalingConfigurationName     string  `json:"AutoScalingConfigurationName"`
	AutoScalingConfigurationRevision int     `json:"AutoScalingConfigurationRevision"`
	Latest                           bool    `json:"Latest"`
	Status                           string  `json:"Status"`
	MaxConcurrency                   int     `json:"MaxConcurrency"`
	MinSize                          int     `json:"MinSize"`
	MaxSize                          int     `json:"MaxSize"`
	CreatedAt                        float64 `json:"CreatedAt"`
	HasAssociatedService             bool    `json:"HasAssociatedService"`
	IsDefault                        bool    `json:"IsDefault"`
}

type arTag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

type arOperation struct {
	ID        string  `json:"Id"`
	Type      string  `json:"Type"`
	Status    string  `json:"Status"`
	TargetArn string  `json:"TargetArn"`
	StartedAt float64 `json:"StartedAt"`
	EndedAt   float64 `json:"EndedAt,omitempty"`
	UpdatedAt float64 `json:"UpdatedAt"`

	left   int    // DescribeService polls before it ends
	fail   string // why it fails ("" : it succeeds)
	rolled bool   // its ROLLBACK_IN_PROGRESS poll was seen
	end    string // the service status it ends in
}

// arError is an App Runner error answer.
type arError struct {
	status int
	code   string
	msg    string
}

func (e *arError) Error() string { return e.code + ": " + e.msg }

func arNotFound(format string, a ...any) *arError {
	return &arError{http.StatusBadRequest, "ResourceNotFoundException", fmt.Sprintf(format, a...)}
}

func arInvalidRequest(format string, a ...any) *arError {
	return &arError{http.StatusBadRequest, "InvalidRequestException", fmt.Sprintf(format, a...)}
}

func arInvalidState(format string, a ...any) *arError {
	return &arError{http.StatusBadRequest, "InvalidStateException", fmt.Sprintf(format, a...)}
}

func (s *AppRunner) serve(c *Call) *Response {
	var out any
	var err error
	var in map[string]json.RawMessage
	if len(c.Body) > 0 {
		if e := json.Unmarshal(c.Body, &in); e != nil {
			err = &arError{http.StatusBadRequest, "SerializationException", "request body is not JSON"}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.region = callRegion(c.Request)
	if f := s.faults[c.Action]; err == nil && f != nil && f.n > 0 {
		f.n--
		err = &arError{f.status, f.code, "fault injected by the test: " + f.code}
	}
	if err == nil {
		switch c.Action {
		case "CreateService":
			out, err = s.createService(c.Body)
		case "DescribeService":
			out, err = s.describeService(in)
		case "ListServices":
			out, err = s.listServices(in)
		case "UpdateService":
			out, err = s.updateService(c.Body)
		case "PauseService":
			out, err = s.simpleOp(in, "PAUSE_SERVICE")
		case "ResumeService":
			out, err = s.simpleOp(in, "RESUME_SERVICE")
		case "DeleteService":
			out, err = s.simpleOp(in, "DELETE_SERVICE")
		case "StartDeployment":
			out, err = s.startDeployment(in)
		case "ListOperations":
			out, err = s.listOperations(in)
		case "DescribeAutoScalingConfiguration":
			out, err = s.describeASC(in)
		case "CreateAutoScalingConfiguration":
			out, err = s.createASC(c.Body)
		case "TagResource":
			out, err = s.tagResource(c.Body)
		case "ListTagsForResource":
			out, err = s.listTags(in)
		default:
			err = &arError{http.StatusBadRequest, "UnknownOperationException", "the App Runner fake does not serve " + c.Action}
		}
	}
	h := http.Header{}
	h.Set("Content-Type", "application/x-amz-json-1.0")
	h.Set("X-Amzn-Requestid", "berth-apprunner-fake")
	resp := &Response{StatusCode: http.StatusOK, Header: h}
	if e, ok := err.(*arError); ok {
		resp.StatusCode = e.status
		h.Set("X-Amzn-Errortype", e.code)
		resp.Body, _ = json.Marshal(map[string]string{"__type": "com.amazonaws.apprunner#" + e.code, "Message": e.msg})
	} else {
		resp.Body, _ = json.Marshal(out)
	}
	s.answers = append(s.answers, AppRunnerAnswer{Action: c.Action, Status: resp.StatusCode, Body: resp.Body})
	return resp
}

func arStr(in map[string]json.RawMessage, key string) string {
	var v string
	_ = json.Unmarshal(in[key], &v)
	return v
}

func arNow() float64 { return float64(time.Now().UnixMilli()) / 1000 }

func arHexID(n int) string {
	b := make([]byte, n/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// uuid is a random (version 4) UUID, as App Runner's operation IDs are.
func arUUID() string {
	h := []byte(arHexID(32))
	h[12] = '4'
	h[16] = "89ab"[h[16]%4]
	return string(h[:8]) + "-" + string(h[8:12]) + "-" + string(h[12:16]) + "-" + string(h[16:20]) + "-" + string(h[20:])
}

// Limits from botocore's App Runner model (ServiceName, Cpu, Memory, the
// health check's members, ASConfig*).
var (
	arServiceNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-_]{3,39}$`)
	arCPURE         = regexp.MustCompile(`^(256|512|1024|2048|4096|(0\.25|0\.5|1|2|4) vCPU)$`)
	arMemoryRE      = regexp.MustCompile(`^(512|1024|2048|3072|4096|6144|8192|10240|12288|(0\.5|1|2|3|4|6|8|10|12) GB)$`)
	arASCNameRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9\-_]{3,31}$`)
)

// request is what CreateService and UpdateService accept.
type arRequest struct {
	ServiceName                 string
	ServiceArn                  string
	SourceConfiguration         *arSource
	InstanceConfiguration       *arInstance
	HealthCheckConfiguration    *arHealth
	AutoScalingConfigurationArn string
	ObservabilityConfiguration  *arObservability
	Tags                        []arTag
}

func (s *AppRunner) check(r *arRequest) error {
	if src := r.SourceConfiguration; src != nil {
		ir := src.ImageRepository
		if ir == nil {
			return arInvalidRequest("SourceConfiguration needs an ImageRepository (the fake serves image services only)")
		}
		if ir.ImageIdentifier == "" || (ir.ImageRepositoryType != "ECR" && ir.ImageRepositoryType != "ECR_PUBLIC") {
			return arInvalidRequest("ImageRepository needs an ImageIdentifier and ImageRepositoryType ECR or ECR_PUBLIC")
		}
	}
	if ic := r.InstanceConfiguration; ic != nil {
		if ic.CPU != "" && !arCPURE.MatchString(ic.CPU) {
			return arInvalidRequest("1 validation error detected: Value '%s' at 'instanceConfiguration.cpu' failed to satisfy constraint", ic.CPU)
		}
		if ic.Memory != "" && !arMemoryRE.MatchString(ic.Memory) {
			return arInvalidRequest("1 validation error detected: Value '%s' at 'instanceConfiguration.memory' failed to satisfy constraint", ic.Memory)
		}
	}
	if h := r.HealthCheckConfiguration; h != nil {
		for name, v := range map[string]*int{"interval": h.Interval, "timeout": h.Timeout, "healthyThreshold": h.HealthyThreshold, "unhealthyThreshold": h.UnhealthyThreshold} {
			if v != nil && (*v < 1 || *v > 20) {
				return arInvalidRequest("1 validation error detected: Value '%d' at 'healthCheckConfiguration.%s' failed to satisfy constraint: Member must have value between 1 and 20", *v, name)
			}
		}
		if h.Protocol != "" && h.Protocol != "TCP" && h.Protocol != "HTTP" {
			return arInvalidRequest("healthCheckConfiguration.protocol must be TCP or HTTP")
		}
	}
	if a := r.AutoScalingConfigurationArn; a != "" && s.ascs[a] == nil {
		return arInvalidRequest("Auto scaling configuration %s does not exist", a)
	}
	return nil
}

func (s *AppRunner) createService(body []byte) (any, error) {
	var r arRequest
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, arInvalidRequest("%v", err)
	}
	if !arServiceNameRE.MatchString(r.ServiceName) {
		return nil, arInvalidRequest("ServiceName %q must match [A-Za-z0-9][A-Za-z0-9-_]{3,39}", r.ServiceName)
	}
	if r.SourceConfiguration == nil {
		return nil, arInvalidRequest("SourceConfiguration is required")
	}
	if err := s.check(&r); err != nil {
		return nil, err
	}
	for _, svc := range s.services {
		if svc.ServiceName == r.ServiceName && svc.Status != "DELETED" {
			return nil, arInvalidRequest("Service with the provided name already exists: %s", r.ServiceName)
		}
	}
	id := arHexID(32)
	t := arNow()
	svc := &arService{
		ServiceName: r.ServiceName,
		ServiceID:   id,
		ServiceArn:  fmt.Sprintf("arn:aws:apprunner:%s:%s:service/%s/%s", s.region, s.account, r.ServiceName, id),
		ServiceURL:  id[:10] + "." + s.region + ".awsapprunner.com",
		CreatedAt:   t, UpdatedAt: t,
		Status:              "OPERATION_IN_PROGRESS",
		SourceConfiguration: *r.SourceConfiguration,
		InstanceConfiguration: arInstance{
			CPU: "1 vCPU", Memory: "2 GB",
		},
		HealthCheckConfiguration: &arHealth{Protocol: "TCP", Path: "/", Interval: arPtr(5), Timeout: arPtr(2), HealthyThreshold: arPtr(1), UnhealthyThreshold: arPtr(5)},
		NetworkConfiguration: arNetwork{
			EgressConfiguration:  map[string]any{"EgressType": "DEFAULT"},
			IngressConfiguration: map[string]any{"IsPubliclyAccessible": true},
			IPAddressType:        "IPV4",
		},
		ObservabilityConfiguration: &arObservability{ObservabilityEnabled: false},
	}
	if svc.SourceConfiguration.AutoDeploymentsEnabled == nil {
		svc.SourceConfiguration.AutoDeploymentsEnabled = arPtr(false)
	}
	arApplyConfig(svc, &r)
	if err := arCheckAccess(svc); err != nil {
		return nil, err
	}
	ascARN := r.AutoScalingConfigurationArn
	if ascARN == "" {
		ascARN = s.defaultASC().AutoScalingConfigurationArn
	}
	s.useASC(svc, ascARN)
	s.services[svc.ServiceArn] = svc
	s.order = append(s.order, svc.ServiceArn)
	s.tags[svc.ServiceArn] = append([]arTag(nil), r.Tags...)
	op := s.start(svc, "CREATE_SERVICE", "RUNNING", "")
	return map[string]any{"Service": svc, "OperationId": op.ID}, nil
}

// checkAccess refuses a private ECR image App Runner has no role to pull
// with: the configuration as it would be after the call (an update that
// leaves AuthenticationConfiguration out keeps the service's).
func arCheckAccess(svc *arService) error {
	src := svc.SourceConfiguration
	if src.ImageRepository.ImageRepositoryType == "ECR" && (src.AuthenticationConfiguration == nil || src.AuthenticationConfiguration.AccessRoleArn == "") {
		return arInvalidRequest("Authentication configuration is invalid: an ECR image needs AuthenticationConfiguration.AccessRoleArn")
	}
	return nil
}

func arPtr[T any](v T) *T { return &v }

// applyConfig sets what a CreateService or UpdateService request names on
// svc; what it leaves out stays as it was, as App Runner does.
func arApplyConfig(svc *arService, r *arRequest) {
	if src := r.SourceConfiguration; src != nil {
		if src.ImageRepository != nil {
			ir := *src.ImageRepository
			svc.SourceConfiguration.ImageRepository = &ir
		}
		if src.AutoDeploymentsEnabled != nil {
			svc.SourceConfiguration.AutoDeploymentsEnabled = src.AutoDeploymentsEnabled
		}
		if src.AuthenticationConfiguration != nil {
			svc.SourceConfiguration.AuthenticationConfiguration = src.AuthenticationConfiguration
		}
	}
	if ic := r.InstanceConfiguration; ic != nil {
		if ic.CPU != "" {
			svc.InstanceConfiguration.CPU = arNormalCPU(ic.CPU)
		}
		if ic.Memory != "" {
			svc.InstanceConfiguration.Memory = arNormalMemory(ic.Memory)
		}
		if ic.InstanceRoleArn != "" {
			svc.InstanceConfiguration.InstanceRoleArn = ic.InstanceRoleArn
		}
	}
	if h := r.HealthCheckConfiguration; h != nil {
		hc := *h
		if hc.Protocol == "" {
			hc.Protocol = "TCP"
		}
		svc.HealthCheckConfiguration = &hc
	}
	if o := r.ObservabilityConfiguration; o != nil {
		oc := *o
		svc.ObservabilityConfiguration = &oc
	}
}

// normalCPU answers a CPU as App Runner does, in vCPU ("1024" → "1 vCPU").
func arNormalCPU(v string) string {
	units := map[string]string{"256": "0.25 vCPU", "512": "0.5 vCPU", "1024": "1 vCPU", "2048": "2 vCPU", "4096": "4 vCPU"}
	if u, ok := units[v]; ok {
		return u
	}
	return v
}

// normalMemory answers a memory size as App Runner does, in GB ("2048" →
// "2 GB").
func arNormalMemory(v string) string {
	if !strings.HasSuffix(v, "GB") {
		var mb int
		if _, err := fmt.Sscan(v, &mb); err == nil {
			if mb%1024 == 0 {
				return fmt.Sprintf("%d GB", mb/1024)
			}
			return fmt.Sprintf("%g GB", float64(mb)/1024)
		}
	}
	return v
}

func (s *AppRunner) defaultASC() *arASC {
	for _, a := range s.ascs {
		if a.IsDefault && a.Latest {
			return a
		}
	}
	return nil
}

func (s *AppRunner) useASC(svc *arService, arn string) {
	a := s.ascs[arn]
	a.HasAssociatedService = true
	svc.AutoScalingConfigurationSummary = arASCSummary{
		AutoScalingConfigurationArn:      a.AutoScalingConfigurationArn,
		AutoScalingConfigurationName:     a.AutoScalingConfigurationName,
		AutoScalingConfigurationRevision: a.AutoScalingConfigurationRevision,
		Status:                           a.Status,
		CreatedAt:                        a.CreatedAt,
		HasAssociatedService:             true,
		IsDefault:                        a.IsDefault,
	}
}

// start begins an operation on svc that ends, after the polls, with the
// service in status end (or rolled back, when fail says why).
func (s *AppRunner) start(svc *arService, typ, end, fail string) *arOperation {
	t := arNow()
	op := &arOperation{
		ID: arUUID(), Type: typ, Status: "IN_PROGRESS", TargetArn: svc.ServiceArn,
		StartedAt: t, UpdatedAt: t, left: s.polls, fail: fail, end: end,
	}
	svc.Status = "OPERATION_IN_PROGRESS"
	svc.UpdatedAt = t
	s.ops[svc.ServiceArn] = append([]*arOperation{op}, s.ops[svc.ServiceArn]...)
	if op.left <= 0 {
		s.advance(svc)
	}
	return op
}

// advance moves the service's operation in progress one poll on.
func (s *AppRunner) advance(svc *arService) {
	ops := s.ops[svc.ServiceArn]
	if len(ops) == 0 {
		return
	}
	op := ops[0]
	if op.EndedAt != 0 {
		return
	}
	t := arNow()
	op.UpdatedAt = t
	if op.left > 0 {
		op.left--
		return
	}
	if op.fail != "" {
		if !op.rolled && s.polls > 0 {
			op.rolled = true
			op.Status = "ROLLBACK_IN_PROGRESS"
			return
		}
		op.Status, op.EndedAt = "ROLLBACK_SUCCEEDED", t
		svc.pending = nil
		svc.Status = "RUNNING"
		return
	}
	op.Status, op.EndedAt = "SUCCEEDED", t
	if p := svc.pending; p != nil {
		keep := svc.ServiceURL
		*svc = *p
		svc.ServiceURL = keep
	}
	svc.pending = nil
	svc.Status = op.end
	svc.UpdatedAt = t
	if op.end == "DELETED" {
		svc.DeletedAt = t
	}
}

func (s *AppRunner) find(in map[string]json.RawMessage) (*arService, error) {
	arn := arStr(in, "ServiceArn")
	if arn == "" {
		return nil, arInvalidRequest("ServiceArn is required")
	}
	svc := s.services[arn]
	if svc == nil || svc.Status == "DELETED" {
		return nil, arNotFound("Resource %s is not found", arn)
	}
	return svc, nil
}

func (s *AppRunner) describeService(in map[string]json.RawMessage) (any, error) {
	arn := arStr(in, "ServiceArn")
	svc := s.services[arn]
	if svc == nil {
		return nil, arNotFound("Resource %s is not found", arn)
	}
	s.advance(svc)
	return map[string]any{"Service": svc}, nil
}

// maxResults is a List call's MaxResults, or n.
func maxResults(in map[string]json.RawMessage, n int) int {
	var m int
	if json.Unmarshal(in["MaxResults"], &m) == nil && m > 0 && m < n {
		return m
	}
	return n
}

// callRegion is the region a call is signed for (its credential scope),
// the ARNs' region; Region when it names none.
func callRegion(r *http.Request) string {
	auth := r.Header.Get("Authorization")
	if i := strings.Index(auth, "Credential="); i >= 0 {
		scope := strings.Split(strings.SplitN(auth[i+len("Credential="):], ",", 2)[0], "/")
		if len(scope) == 5 && scope[2] != "" {
			return scope[2]
		}
	}
	return Region
}

func (s *AppRunner) listServices(in map[string]json.RawMessage) (any, error) {
	list := []map[string]any{}
	for _, arn := range s.order {
		svc := s.services[arn]
		if svc.Status == "DELETED" {
			continue
		}
		list = append(list, map[string]any{
			"ServiceName": svc.ServiceName, "ServiceId": svc.ServiceID, "ServiceArn": svc.ServiceArn,
			"ServiceUrl": svc.ServiceURL, "CreatedAt": svc.CreatedAt, "UpdatedAt": svc.UpdatedAt, "Status": svc.Status,
		})
	}
	return map[string]any{"ServiceSummaryList": list[:maxResults(in, len(list))]}, nil
}

func (s *AppRunner) busy(svc *arService) error {
	if svc.Status == "OPERATION_IN_PROGRESS" {
		return arInvalidState("Service %s has an operation in progress; wait until it ends", svc.ServiceArn)
	}
	return nil
}

func (s *AppRunner) updateService(body []byte) (any, error) {
	var r arRequest
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, arInvalidRequest("%v", err)
	}
	svc := s.services[r.ServiceArn]
	if svc == nil || svc.Status == "DELETED" {
		return nil, arNotFound("Resource %s is not found", r.ServiceArn)
	}
	if err := s.busy(svc); err != nil {
		return nil, err
	}
	if svc.Status != "RUNNING" {
		return nil, arInvalidState("Service %s is %s; it can only be updated when RUNNING", svc.ServiceArn, svc.Status)
	}
	if err := s.check(&r); err != nil {
		return nil, err
	}
	next := *svc
	next.SourceConfiguration = svc.SourceConfiguration
	arApplyConfig(&next, &r)
	if err := arCheckAccess(&next); err != nil {
		return nil, err
	}
	if r.AutoScalingConfigurationArn != "" {
		s.useASC(&next, r.AutoScalingConfigurationArn)
	}
	svc.pending = &next
	fail := s.failNext
	s.failNext = ""
	op := s.start(svc, "UPDATE_SERVICE", "RUNNING", fail)
	return map[string]any{"Service": svc, "OperationId": op.ID}, nil
}

func (s *AppRunner) startDeployment(in map[string]json.RawMessage) (any, error) {
	svc, err := s.find(in)
	if err != nil {
		return nil, err
	}
	if err := s.busy(svc); err != nil {
		return nil, err
	}
	if svc.Status != "RUNNING" {
		return nil, arInvalidState("Service %s is %s; a deployment needs it RUNNING", svc.ServiceArn, svc.Status)
	}
	fail := s.failNext
	s.failNext = ""
	op := s.start(svc, "START_DEPLOYMENT", "RUNNING", fail)
	return map[string]any{"OperationId": op.ID}, nil
}

// simpleOp is PauseService, ResumeService and DeleteService.
func (s *AppRunner) simpleOp(in map[string]json.RawMessage, typ string) (any, error) {
	svc, err := s.find(in)
	if err != nil {
		return nil, err
	}
	if err := s.busy(svc); err != nil {
		return nil, err
	}
	end := map[string]string{"PAUSE_SERVICE": "PAUSED", "RESUME_SERVICE": "RUNNING", "DELETE_SERVICE": "DELETED"}[typ]
	switch {
	case typ == "PAUSE_SERVICE" && svc.Status != "RUNNING":
		return nil, arInvalidState("Service %s is %s; only a RUNNING service can be paused", svc.ServiceArn, svc.Status)
	case typ == "RESUME_SERVICE" && svc.Status != "PAUSED":
		return nil, arInvalidState("Service %s is %s; only a PAUSED service can be resumed", svc.ServiceArn, svc.Status)
	}
	op := s.start(svc, typ, end, "")
	return map[string]any{"Service": svc, "OperationId": op.ID}, nil
}

func (s *AppRunner) listOperations(in map[string]json.RawMessage) (any, error) {
	arn := arStr(in, "ServiceArn")
	if s.services[arn] == nil {
		return nil, arNotFound("Resource %s is not found", arn)
	}
	list := []*arOperation{}
	list = append(list, s.ops[arn]...)
	return map[string]any{"OperationSummaryList": list[:maxResults(in, len(list))]}, nil
}

func (s *AppRunner) newASC(name string, conc, lo, hi int) *arASC {
	rev := 1
	for _, a := range s.ascs {
		if a.AutoScalingConfigurationName == name {
			a.Latest = false
			if a.AutoScalingConfigurationRevision >= rev {
				rev = a.AutoScalingConfigurationRevision + 1
			}
		}
	}
	a := &arASC{
		AutoScalingConfigurationArn:      fmt.Sprintf("arn:aws:apprunner:%s:%s:autoscalingconfiguration/%s/%d/%s", s.region, s.account, name, rev, arHexID(32)),
		AutoScalingConfigurationName:     name,
		AutoScalingConfigurationRevision: rev,
		Latest:                           true,
		Status:                           "ACTIVE",
		MaxConcurrency:                   conc, MinSize: lo, MaxSize: hi,
		CreatedAt: arNow(),
	}
	s.ascs[a.AutoScalingConfigurationArn] = a
	return a
}

func (s *AppRunner) describeASC(in map[string]json.RawMessage) (any, error) {
	arn := arStr(in, "AutoScalingConfigurationArn")
	a := s.ascs[arn]
	if a == nil {
		return nil, arNotFound("Resource %s is not found", arn)
	}
	return map[string]any{"AutoScalingConfiguration": a}, nil
}

func (s *AppRunner) createASC(body []byte) (any, error) {
	var r struct {
		AutoScalingConfigurationName string
		MaxConcurrency               *int
		MinSize                      *int
		MaxSize                      *int
		Tags                         []arTag
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, arInvalidRequest("%v", err)
	}
	if !arASCNameRE.MatchString(r.AutoScalingConfigurationName) || r.AutoScalingConfigurationName == "DefaultConfiguration" {
		return nil, arInvalidRequest("AutoScalingConfigurationName %q must match [A-Za-z0-9][A-Za-z0-9-_]{3,31} and not be DefaultConfiguration", r.AutoScalingConfigurationName)
	}
	conc, lo, hi := 100, 1, 25
	if r.MaxConcurrency != nil {
		conc = *r.MaxConcurrency
	}
	if r.MinSize != nil {
		lo = *r.MinSize
	}
	if r.MaxSize != nil {
		hi = *r.MaxSize
	}
	// ASConfigMaxConcurrency 1-200, ASConfigMinSize 1-25, ASConfigMaxSize 1-25.
	if conc < 1 || conc > 200 || lo < 1 || lo > 25 || hi < 1 || hi > 25 || lo > hi {
		return nil, arInvalidRequest("MaxConcurrency must be 1-200, MinSize and MaxSize 1-25 with MinSize <= MaxSize")
	}
	a := s.newASC(r.AutoScalingConfigurationName, conc, lo, hi)
	s.tags[a.AutoScalingConfigurationArn] = r.Tags
	return map[string]any{"AutoScalingConfiguration": a}, nil
}

func (s *AppRunner) exists(arn string) bool {
	if svc := s.services[arn]; svc != nil && svc.Status != "DELETED" {
		return true
	}
	return s.ascs[arn] != nil
}

func (s *AppRunner) tagResource(body []byte) (any, error) {
	var r struct {
		ResourceArn string
		Tags        []arTag
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, arInvalidRequest("%v", err)
	}
	if !s.exists(r.ResourceArn) {
		return nil, arNotFound("Resource %s is not found", r.ResourceArn)
	}
	tags := map[string]string{}
	for _, t := range s.tags[r.ResourceArn] {
		tags[t.Key] = t.Value
	}
	for _, t := range r.Tags {
		tags[t.Key] = t.Value
	}
	var list []arTag
	for k, v := range tags {
		list = append(list, arTag{k, v})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Key < list[j].Key })
	s.tags[r.ResourceArn] = list
	return map[string]any{}, nil
}

func (s *AppRunner) listTags(in map[string]json.RawMessage) (any, error) {
	arn := arStr(in, "ResourceArn")
	if !s.exists(arn) {
		return nil, arNotFound("Resource %s is not found", arn)
	}
	list := append([]arTag{}, s.tags[arn]...)
	return map[string]any{"Tags": list}, nil
}
