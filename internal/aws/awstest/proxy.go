package awstest

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Proxy is an HTTP proxy in front of moto_server for the AWS clients under
// test (point AWS_ENDPOINT_URL at its URL, or call UseProxy). It forwards
// every request to moto and answers with moto's answer, except that:
//
//   - with a registry, ECR answers name that registry instead of ECR's:
//     GetAuthorizationToken's proxyEndpoint becomes http://REGISTRY and the
//     repositoryUri of CreateRepository and DescribeRepositories becomes
//     REGISTRY/NAME, so berth pushes images to the loopback registry, as it
//     learns a real registry's address from ECR;
//   - Cloud Map's CreatePrivateDnsNamespace gets a VPC of its own per
//     namespace name (cloudmap.go): moto refuses a second namespace in a
//     VPC whatever its name, where AWS refuses only a second one of the
//     same name, and every test's app lives in the default VPC;
//   - hooks registered with Handle see the calls of an operation first and
//     may answer in moto's place (an error such as ThrottlingException, a
//     task's exit code moto cannot give) or change moto's answer.
//
// Operations are named as in IAM policies, "service:Action", the service
// being the SigV4 signing name of the call: "ecs:RunTask",
// "ecr:GetAuthorizationToken", "sts:GetCallerIdentity",
// "elasticloadbalancing:ModifyRule", "logs:FilterLogEvents",
// "dynamodb:PutItem". The action is read from the X-Amz-Target header (JSON
// protocols), the Action form field (query protocols: sts, iam, ec2,
// elasticloadbalancing) or the last path element (RPCv2 CBOR); REST
// services have none, and "service:*" matches every call of a service.
//
// A Proxy is test code only: product code reaches it solely through the
// standard configuration chain.
type Proxy struct {
	// URL is the proxy's endpoint, http://127.0.0.1:PORT.
	URL string

	moto     string
	registry string
	client   *http.Client

	mu     sync.Mutex
	first  Hook
	hooks  map[string]Hook
	counts map[string]int
	log    []string
}

// Hook decides the answer to one call. It returns nil to let the call go
// to moto unchanged, or a Response of its own: one it makes up (see
// Call.Error) or moto's, got with Call.Forward and changed.
type Hook func(c *Call) *Response

// Call is one AWS API call the proxy received.
type Call struct {
	// Service is the call's SigV4 signing name ("ecs", "sts", "logs").
	Service string
	// Action is the operation ("RunTask"); empty for REST protocols.
	Action string
	// N counts the calls of this operation the proxy has seen, this one
	// included: 1 for the first.
	N int
	// Request is the request as received; its body has been read into
	// Body.
	Request *http.Request
	// Body is the request's body.
	Body []byte

	p *Proxy
}

// Response is an answer to a call: moto's, or one a hook made.
type Response struct {
	StatusCode int
	Header     http.Header
	Body       []byte
}

// StartProxy starts a Proxy in front of the moto_server at moto, closed
// when the test ends. registry is host:port of the registry ECR answers
// should name (Registry), or "" to leave them as moto gives them.
func StartProxy(t testing.TB, moto, registry string) *Proxy {
	t.Helper()
	p := &Proxy{
		moto:     strings.TrimRight(moto, "/"),
		registry: registry,
		client:   &http.Client{},
		hooks:    map[string]Hook{},
		counts:   map[string]int{},
	}
	p.hooks["servicediscovery:CreatePrivateDnsNamespace"] = namespacePerName
	srv := httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// UseProxy starts moto_server (MotoEndpoint), the registry (Registry) and a
// Proxy in front of moto naming that registry, and points the standard
// configuration chain at the proxy for the rest of the test (UseEndpoint).
// It uses t.Setenv, so the test cannot be parallel.
func UseProxy(t *testing.T) *Proxy {
	t.Helper()
	p := StartProxy(t, MotoEndpoint(t), Registry(t))
	UseEndpoint(t, p.URL)
	return p
}

// Registry is the host:port ECR answers are rewritten to name, or "".
func (p *Proxy) Registry() string { return p.registry }

// Handle sets the hook for op ("ecs:RunTask", or "ecs:*" for every call of
// a service), replacing any hook set before for it; a nil hook removes it.
// A hook for the exact operation is asked before one for "service:*".
func (p *Proxy) Handle(op string, h Hook) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if h == nil {
		delete(p.hooks, op)
		return
	}
	p.hooks[op] = h
}

// Intercept sets a hook asked before any other about every call of every
// service (nil removes it): a test that cuts a berth's network off at a
// chosen moment answers every call from then on with an error.
func (p *Proxy) Intercept(h Hook) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.first = h
}

// Count is how many calls of op ("sts:GetCallerIdentity") the proxy has
// received, whether moto or a hook answered them.
func (p *Proxy) Count(op string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[op]
}

// Calls lists the operations of every call received so far, in order.
func (p *Proxy) Calls() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.log...)
}

// Times makes h answer only the first n calls it is asked about; later
// calls go to moto.
func Times(n int, h Hook) Hook {
	var mu sync.Mutex
	seen := 0
	return func(c *Call) *Response {
		mu.Lock()
		seen++
		mine := seen <= n
		mu.Unlock()
		if !mine {
			return nil
		}
		return h(c)
	}
}

// Fail is a hook answering every call with the error code (such as
// "ThrottlingException", "Throttling", "ServiceUnavailable") and HTTP
// status, in the call's protocol.
func Fail(status int, code, message string) Hook {
	return func(c *Call) *Response { return c.Error(status, code, message) }
}

// Op is the call's operation, "service:Action".
func (c *Call) Op() string { return c.Service + ":" + c.Action }

// Forward sends the call to moto and returns moto's answer (with the
// registry rewrites applied), for a hook to change and return.
func (c *Call) Forward() (*Response, error) {
	return c.p.forward(c)
}

// Error makes an AWS error answer in the call's protocol, as the SDK
// parses it: a JSON body with __type for JSON protocols, an ErrorResponse
// document for query protocols, EC2's Response/Errors document for ec2.
func (c *Call) Error(status int, code, message string) *Response {
	h := http.Header{}
	h.Set("X-Amzn-Requestid", "berth-test-proxy")
	switch {
	case c.Request.Header.Get("X-Amz-Target") != "":
		h.Set("Content-Type", "application/x-amz-json-1.1")
		h.Set("X-Amzn-Errortype", code)
		body, _ := json.Marshal(map[string]string{"__type": code, "message": message})
		return &Response{StatusCode: status, Header: h, Body: body}
	case c.Service == "ec2":
		h.Set("Content-Type", "text/xml")
		body := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>`+
			`<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors>`+
			`<RequestID>berth-test-proxy</RequestID></Response>`, xmlText(code), xmlText(message))
		return &Response{StatusCode: status, Header: h, Body: []byte(body)}
	default:
		h.Set("Content-Type", "text/xml")
		kind := "Sender"
		if status >= 500 {
			kind = "Receiver"
		}
		body := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>`+
			`<ErrorResponse><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message></Error>`+
			`<RequestId>berth-test-proxy</RequestId></ErrorResponse>`, kind, xmlText(code), xmlText(message))
		return &Response{StatusCode: status, Header: h, Body: []byte(body)}
	}
}

// JSON decodes a JSON answer's body (numbers kept as json.Number).
func (r *Response) JSON() (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(r.Body))
	d.UseNumber()
	var v map[string]any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("answer is not a JSON object: %w", err)
	}
	return v, nil
}

// SetJSON replaces the answer's body with v encoded as JSON.
func (r *Response) SetJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	r.Body = b
	return nil
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c := &Call{Request: r, Body: body, p: p}
	c.Service, c.Action = operation(r, body)

	var hook, first Hook
	if c.Service != "" {
		op := c.Op()
		p.mu.Lock()
		p.counts[op]++
		c.N = p.counts[op]
		p.log = append(p.log, op)
		hook = p.hooks[op]
		if hook == nil {
			hook = p.hooks[c.Service+":*"]
		}
		first = p.first
		p.mu.Unlock()
	}
	var resp *Response
	if first != nil {
		resp = first(c)
	}
	if resp == nil && hook != nil {
		resp = hook(c)
	}
	if resp == nil {
		if resp, err = p.forward(c); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
	}
	for k, vs := range resp.Header {
		switch http.CanonicalHeaderKey(k) {
		case "Content-Length", "Content-Encoding", "Transfer-Encoding", "Connection":
			continue
		}
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(resp.Body)))
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(resp.Body)
}

func (p *Proxy) forward(c *Call) (*Response, error) {
	r := c.Request
	req, err := http.NewRequestWithContext(r.Context(), r.Method, p.moto+r.URL.RequestURI(), bytes.NewReader(c.Body))
	if err != nil {
		return nil, err
	}
	req.Header = r.Header.Clone()
	req.Header.Del("Accept-Encoding") // let the transport decompress
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("moto: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("moto: %w", err)
	}
	out := &Response{StatusCode: resp.StatusCode, Header: resp.Header.Clone(), Body: body}
	if p.registry != "" && c.Service == "ecr" && resp.StatusCode == http.StatusOK {
		if err := p.rewriteECR(c.Action, out); err != nil {
			return nil, fmt.Errorf("rewrite ecr:%s answer: %w", c.Action, err)
		}
	}
	return out, nil
}

// rewriteECR makes ECR's answers name the loopback registry.
func (p *Proxy) rewriteECR(action string, r *Response) error {
	var change func(v map[string]any) bool
	repoURI := func(repo any) bool {
		m, ok := repo.(map[string]any)
		if !ok {
			return false
		}
		name, _ := m["repositoryName"].(string)
		m["repositoryUri"] = p.registry + "/" + name
		return true
	}
	switch action {
	case "GetAuthorizationToken":
		change = func(v map[string]any) bool {
			data, _ := v["authorizationData"].([]any)
			for _, d := range data {
				if m, ok := d.(map[string]any); ok {
					m["proxyEndpoint"] = "http://" + p.registry
				}
			}
			return len(data) > 0
		}
	case "CreateRepository":
		change = func(v map[string]any) bool { return repoURI(v["repository"]) }
	case "DescribeRepositories":
		change = func(v map[string]any) bool {
			repos, _ := v["repositories"].([]any)
			for _, repo := range repos {
				repoURI(repo)
			}
			return len(repos) > 0
		}
	default:
		return nil
	}
	v, err := r.JSON()
	if err != nil {
		return err
	}
	if !change(v) {
		return nil
	}
	return r.SetJSON(v)
}

// operation names a call: its signing name, from the Authorization
// header's credential scope, and its action.
func operation(r *http.Request, body []byte) (service, action string) {
	auth := r.Header.Get("Authorization")
	if i := strings.Index(auth, "Credential="); i >= 0 {
		scope := auth[i+len("Credential="):]
		if j := strings.IndexAny(scope, ", "); j >= 0 {
			scope = scope[:j]
		}
		// ACCESS_KEY/DATE/REGION/SERVICE/aws4_request
		if parts := strings.Split(scope, "/"); len(parts) >= 5 {
			service = parts[len(parts)-2]
		}
	}
	if service == "" {
		return "", ""
	}
	switch target := r.Header.Get("X-Amz-Target"); {
	case target != "":
		action = target[strings.LastIndex(target, ".")+1:]
	case strings.Contains(r.Header.Get("Smithy-Protocol"), "rpc-v2-cbor"):
		action = r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
	case strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded"):
		if form, err := url.ParseQuery(string(body)); err == nil {
			action = form.Get("Action")
		}
	}
	return service, action
}

func xmlText(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
