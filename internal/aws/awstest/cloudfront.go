package awstest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// CloudFront fills in, behind a Proxy, what moto 5.2.1's CloudFront
// lacks, in CloudFront's REST-XML protocol (API 2020-05-31):
//
//   - ETags: moto never changes a distribution's ETag and accepts any
//     If-Match. Here each distribution has an ETag that changes on every
//     UpdateDistribution, and an UpdateDistribution whose If-Match is not
//     the current one is answered 412 PreconditionFailed, as CloudFront
//     does; ConcurrentChange makes "someone else" change it right after
//     a read.
//   - Status: moto's distributions are Deployed from the first read. After
//     a create or an update, the next InProgressPolls GetDistribution
//     answers here say InProgress.
//   - Tags and comments: moto's server drops the tags of
//     CreateDistributionWithTags (they are added here with TagResource),
//     and its ListDistributions summaries have no Comment or Staging
//     (added here from each distribution's configuration).
//   - Cache policies (Create/Get/Update/ListCachePolicies) and
//     continuous-deployment policies (Create/Get/UpdateContinuous-
//     DeploymentPolicy), which moto does not have, are kept here;
//     CopyDistribution (the staging copy) is made here from moto's
//     primary.
//
// Every other call (distributions, tags, invalidations) goes to moto. The
// shapes written are checked against botocore's CloudFront model by
// TestCloudFrontFakeMatchesModel.
type CloudFront struct {
	p *Proxy

	mu         sync.Mutex
	etags      map[string]string // distribution ID → current ETag
	progress   map[string]int    // distribution ID → InProgress answers left
	polls      int
	concurrent int
	updates    []DistributionUpdate
	cache      map[string]*fakePolicy
	cd         map[string]*fakePolicy
}

// DistributionUpdate is one UpdateDistribution call the fake saw.
type DistributionUpdate struct {
	ID      string
	IfMatch string
	// Status is the answer's HTTP status: 200, or 412 for a stale If-Match.
	Status int
}

type fakePolicy struct {
	id, etag string
	config   []byte // the XML config element as the client sent it
	modified time.Time
}

const cloudFrontNS = "http://cloudfront.amazonaws.com/doc/2020-05-31/"

// FakeCloudFront installs the CloudFront fake on p ("cloudfront:*").
func FakeCloudFront(t testing.TB, p *Proxy) *CloudFront {
	t.Helper()
	f := &CloudFront{p: p, etags: map[string]string{}, progress: map[string]int{},
		cache: map[string]*fakePolicy{}, cd: map[string]*fakePolicy{}}
	p.Handle("cloudfront:*", f.serve)
	return f
}

// InProgressPolls makes the n GetDistribution answers after each create
// or update of a distribution say InProgress.
func (f *CloudFront) InProgressPolls(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.polls = n
}

// ConcurrentChange makes the next n GetDistributionConfig answers be
// followed by a change from someone else: the distribution's ETag moves
// on, so an update with the ETag just read is stale.
func (f *CloudFront) ConcurrentChange(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.concurrent = n
}

// Updates lists the UpdateDistribution calls seen, in order.
func (f *CloudFront) Updates() []DistributionUpdate {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]DistributionUpdate(nil), f.updates...)
}

// ETag is a distribution's current ETag as the fake gives it.
func (f *CloudFront) ETag(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.etagLocked(id)
}

func (f *CloudFront) etagLocked(id string) string {
	if f.etags[id] == "" {
		f.etags[id] = newETag()
	}
	return f.etags[id]
}

func newETag() string {
	b := make([]byte, 7)
	_, _ = rand.Read(b)
	return "E" + strings.ToUpper(hex.EncodeToString(b))[:13]
}

var (
	cfPath   = regexp.MustCompile(`^/2020-05-31/(distribution|cache-policy|continuous-deployment-policy)(?:/([^/]+))?(?:/(config|copy))?$`)
	xmlIDRE  = regexp.MustCompile(`<Id>([^<]+)</Id>`)
	statusRE = regexp.MustCompile(`<Status>Deployed</Status>`)
)

func (f *CloudFront) serve(c *Call) *Response {
	m := cfPath.FindStringSubmatch(c.Request.URL.Path)
	if m == nil {
		return nil
	}
	kind, id, sub, method := m[1], m[2], m[3], c.Request.Method
	switch {
	case kind == "distribution" && id == "" && method == http.MethodPost:
		return f.createDistribution(c)
	case kind == "distribution" && id == "" && method == http.MethodGet:
		return f.listDistributions(c)
	case kind == "distribution" && sub == "" && method == http.MethodGet:
		return f.getDistribution(c, id)
	case kind == "distribution" && sub == "config" && method == http.MethodGet:
		return f.getConfig(c, id)
	case kind == "distribution" && sub == "config" && method == http.MethodPut:
		return f.updateDistribution(c, id)
	case kind == "distribution" && sub == "copy" && method == http.MethodPost:
		return f.copyDistribution(c, id)
	case kind == "cache-policy":
		return f.policy(c, f.cache, "CachePolicy", id)
	case kind == "continuous-deployment-policy":
		return f.policy(c, f.cd, "ContinuousDeploymentPolicy", id)
	}
	return nil
}

// moto sends a request of the fake's own to moto, signed as c was.
func (f *CloudFront) moto(c *Call, method, path string, body []byte) (*Response, error) {
	req, err := http.NewRequestWithContext(c.Request.Context(), method, f.p.moto+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", c.Request.Header.Get("Authorization"))
	req.Header.Set("X-Amz-Date", c.Request.Header.Get("X-Amz-Date"))
	req.Header.Set("Content-Type", "application/xml")
	if m := c.Request.Header.Get("If-Match"); m != "" {
		req.Header.Set("If-Match", m)
	}
	sub := &Call{Service: c.Service, Request: req, Body: body, p: f.p}
	return f.p.forward(sub)
}

var (
	tagsRE    = regexp.MustCompile(`(?s)<Tags>.*?</Tags>`)
	arnRE     = regexp.MustCompile(`<ARN>([^<]+)</ARN>`)
	summaryRE = regexp.MustCompile(`(?s)<DistributionSummary>.*?</DistributionSummary>`)
)

// createDistribution sends CreateDistribution(WithTags) to moto and
// then the tags, which moto's server drops, with TagResource.
func (f *CloudFront) createDistribution(c *Call) *Response {
	resp := f.created(c, nil)
	if _, withTags := c.Request.URL.Query()["WithTags"]; !withTags || resp.StatusCode/100 != 2 {
		return resp
	}
	tags := tagsRE.Find(c.Body)
	arn := arnRE.FindSubmatch(resp.Body)
	if tags == nil || arn == nil {
		return resp
	}
	body := append([]byte(`<Tags xmlns="`+cloudFrontNS+`">`), bytes.TrimPrefix(tags, []byte("<Tags>"))...)
	tr, err := f.moto(c, http.MethodPost, "/2020-05-31/tagging?Operation=Tag&Resource="+url.QueryEscape(string(arn[1])), body)
	if err != nil {
		return c.Error(http.StatusBadGateway, "ServiceUnavailable", err.Error())
	}
	if tr.StatusCode/100 != 2 {
		return tr
	}
	return resp
}

// listDistributions adds to moto's summaries the Comment and Staging
// every CloudFront summary has.
func (f *CloudFront) listDistributions(c *Call) *Response {
	resp, err := c.Forward()
	if err != nil {
		return c.Error(http.StatusBadGateway, "ServiceUnavailable", err.Error())
	}
	if resp.StatusCode != http.StatusOK {
		return resp
	}
	var ferr error
	resp.Body = summaryRE.ReplaceAllFunc(resp.Body, func(sum []byte) []byte {
		m := xmlIDRE.FindSubmatch(sum)
		if m == nil || bytes.Contains(sum, []byte("<Comment>")) {
			return sum
		}
		got, err := f.moto(c, http.MethodGet, "/2020-05-31/distribution/"+string(m[1])+"/config", nil)
		if err != nil {
			ferr = err
			return sum
		}
		staging := elem(got.Body, "Staging")
		if staging == "" {
			staging = "false"
		}
		add := "<Comment>" + xmlText(elem(got.Body, "Comment")) + "</Comment><Staging>" + staging + "</Staging></DistributionSummary>"
		out := append([]byte(nil), bytes.TrimSuffix(sum, []byte("</DistributionSummary>"))...) // sum is moto's body: not appended to
		return append(out, add...)
	})
	if ferr != nil {
		return c.Error(http.StatusBadGateway, "ServiceUnavailable", ferr.Error())
	}
	return resp
}

// created gives a distribution moto just made (from c, or resp when the
// fake made it) an ETag of the fake's and InProgress polls.
func (f *CloudFront) created(c *Call, resp *Response) *Response {
	if resp == nil {
		var err error
		if resp, err = c.Forward(); err != nil {
			return c.Error(http.StatusBadGateway, "ServiceUnavailable", err.Error())
		}
	}
	if resp.StatusCode/100 != 2 {
		return resp
	}
	m := xmlIDRE.FindSubmatch(resp.Body)
	if m == nil {
		return resp
	}
	id := string(m[1])
	f.mu.Lock()
	f.etags[id] = newETag()
	f.progress[id] = f.polls
	resp.Header.Set("ETag", f.etags[id])
	f.mu.Unlock()
	return resp
}

func (f *CloudFront) getDistribution(c *Call, id string) *Response {
	resp, err := c.Forward()
	if err != nil {
		return c.Error(http.StatusBadGateway, "ServiceUnavailable", err.Error())
	}
	if resp.StatusCode != http.StatusOK {
		return resp
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	resp.Header.Set("ETag", f.etagLocked(id))
	if f.progress[id] > 0 {
		f.progress[id]--
		resp.Body = statusRE.ReplaceAll(resp.Body, []byte("<Status>InProgress</Status>"))
	}
	return resp
}

func (f *CloudFront) getConfig(c *Call, id string) *Response {
	resp, err := c.Forward()
	if err != nil {
		return c.Error(http.StatusBadGateway, "ServiceUnavailable", err.Error())
	}
	if resp.StatusCode != http.StatusOK {
		return resp
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	resp.Header.Set("ETag", f.etagLocked(id))
	if f.concurrent > 0 {
		f.concurrent--
		f.etags[id] = newETag()
	}
	return resp
}

func (f *CloudFront) updateDistribution(c *Call, id string) *Response {
	ifMatch := c.Request.Header.Get("If-Match")
	f.mu.Lock()
	current := f.etagLocked(id)
	if ifMatch != current {
		f.updates = append(f.updates, DistributionUpdate{ID: id, IfMatch: ifMatch, Status: http.StatusPreconditionFailed})
		f.mu.Unlock()
		return c.Error(http.StatusPreconditionFailed, "PreconditionFailed",
			"The If-Match version is missing or not valid for the resource.")
	}
	f.mu.Unlock()
	resp, err := c.Forward()
	if err != nil {
		return c.Error(http.StatusBadGateway, "ServiceUnavailable", err.Error())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updates = append(f.updates, DistributionUpdate{ID: id, IfMatch: ifMatch, Status: resp.StatusCode})
	if resp.StatusCode == http.StatusOK {
		f.etags[id] = newETag()
		f.progress[id] = f.polls
		resp.Header.Set("ETag", f.etags[id])
	}
	return resp
}

var (
	callerRefRE = regexp.MustCompile(`<CallerReference>[^<]*</CallerReference>`)
	stagingRE   = regexp.MustCompile(`<Staging>[^<]*</Staging>`)
	aliasesRE   = regexp.MustCompile(`(?s)<Aliases>.*?</Aliases>`)
	cdPolicyRE  = regexp.MustCompile(`<ContinuousDeploymentPolicyId>[^<]*</ContinuousDeploymentPolicyId>`)
)

// copyDistribution is CopyDistribution: the primary's configuration,
// read from moto, made into a new distribution with Staging true, the
// CallerReference given, no aliases and no policy. (Enabled, a body
// member, is not served: berth does not send it.)
func (f *CloudFront) copyDistribution(c *Call, primary string) *Response {
	f.mu.Lock()
	current := f.etagLocked(primary)
	f.mu.Unlock()
	if c.Request.Header.Get("If-Match") != current {
		return c.Error(http.StatusPreconditionFailed, "PreconditionFailed", "The If-Match version is missing or not valid for the resource.")
	}
	ref := elem(c.Body, "CallerReference")
	staging := c.Request.Header.Get("Staging") // a header, as Enabled is a body member
	if ref == "" {
		return c.Error(http.StatusBadRequest, "InvalidArgument", "CallerReference is required")
	}
	got, err := f.moto(c, http.MethodGet, "/2020-05-31/distribution/"+primary+"/config", nil)
	if err != nil {
		return c.Error(http.StatusBadGateway, "ServiceUnavailable", err.Error())
	}
	if got.StatusCode != http.StatusOK {
		return got
	}
	cfg := callerRefRE.ReplaceAll(got.Body, []byte("<CallerReference>"+xmlText(ref)+"</CallerReference>"))
	cfg = aliasesRE.ReplaceAll(cfg, []byte("<Aliases><Quantity>0</Quantity></Aliases>"))
	cfg = cdPolicyRE.ReplaceAll(cfg, []byte("<ContinuousDeploymentPolicyId></ContinuousDeploymentPolicyId>"))
	if staging == "" {
		staging = "false"
	}
	if stagingRE.Match(cfg) {
		cfg = stagingRE.ReplaceAll(cfg, []byte("<Staging>"+staging+"</Staging>"))
	} else {
		cfg = bytes.Replace(cfg, []byte("</DistributionConfig>"), []byte("<Staging>"+staging+"</Staging></DistributionConfig>"), 1)
	}
	made, err := f.moto(c, http.MethodPost, "/2020-05-31/distribution", cfg)
	if err != nil {
		return c.Error(http.StatusBadGateway, "ServiceUnavailable", err.Error())
	}
	return f.created(c, made)
}

// policy serves a policy kind moto lacks: POST makes one, GET reads one
// or lists them (cache policies), PUT replaces one's config and DELETE
// removes it, both with If-Match.
func (f *CloudFront) policy(c *Call, store map[string]*fakePolicy, shape, id string) *Response {
	f.mu.Lock()
	defer f.mu.Unlock()
	cfgElem := shape + "Config"
	switch {
	case c.Request.Method == http.MethodPost && id == "":
		cfg := bytes.TrimSpace(c.Body)
		if shape == "CachePolicy" {
			name := elem(cfg, "Name")
			for _, p := range store {
				if elem(p.config, "Name") == name {
					return c.Error(http.StatusConflict, "CachePolicyAlreadyExists", "A cache policy with this name already exists.")
				}
			}
		}
		p := &fakePolicy{id: newUUID(), etag: newETag(), config: cfg, modified: time.Now().UTC()}
		store[p.id] = p
		r := f.policyResponse(shape, p)
		r.StatusCode = http.StatusCreated
		r.Header.Set("Location", "https://cloudfront.amazonaws.com/2020-05-31/"+pathOf(shape)+"/"+p.id)
		return r
	case c.Request.Method == http.MethodGet && id == "" && shape == "CachePolicy":
		var items strings.Builder
		n := 0
		for _, p := range store {
			if t := c.Request.URL.Query().Get("Type"); t != "" && t != "custom" {
				break
			}
			n++
			fmt.Fprintf(&items, "<CachePolicySummary><Type>custom</Type>%s</CachePolicySummary>", f.policyXML(shape, p))
		}
		body := fmt.Sprintf(`<?xml version="1.0"?><CachePolicyList xmlns="%s"><MaxItems>100</MaxItems><Quantity>%d</Quantity><Items>%s</Items></CachePolicyList>`,
			cloudFrontNS, n, items.String())
		return xmlResponse(http.StatusOK, body)
	}
	p := store[id]
	if p == nil {
		code := "NoSuchCachePolicy"
		if shape != "CachePolicy" {
			code = "NoSuchContinuousDeploymentPolicy"
		}
		return c.Error(http.StatusNotFound, code, "The "+shape+" does not exist.")
	}
	switch c.Request.Method {
	case http.MethodGet:
		return f.policyResponse(shape, p)
	case http.MethodPut:
		if c.Request.Header.Get("If-Match") != p.etag {
			return c.Error(http.StatusPreconditionFailed, "PreconditionFailed", "The If-Match version is missing or not valid for the resource.")
		}
		if !bytes.Contains(c.Body, []byte("<"+cfgElem)) {
			return c.Error(http.StatusBadRequest, "InvalidArgument", "no "+cfgElem)
		}
		p.config, p.etag, p.modified = bytes.TrimSpace(c.Body), newETag(), time.Now().UTC()
		return f.policyResponse(shape, p)
	case http.MethodDelete:
		if c.Request.Header.Get("If-Match") != p.etag {
			return c.Error(http.StatusPreconditionFailed, "PreconditionFailed", "The If-Match version is missing or not valid for the resource.")
		}
		delete(store, id)
		return &Response{StatusCode: http.StatusNoContent, Header: http.Header{}}
	}
	return c.Error(http.StatusMethodNotAllowed, "InvalidArgument", c.Request.Method+" not served by the fake")
}

func pathOf(shape string) string {
	if shape == "CachePolicy" {
		return "cache-policy"
	}
	return "continuous-deployment-policy"
}

var xmlDeclRE = regexp.MustCompile(`^<\?xml[^>]*\?>\s*`)

// policyXML is <SHAPE><Id/><LastModifiedTime/><SHAPEConfig>...</SHAPEConfig></SHAPE>.
func (f *CloudFront) policyXML(shape string, p *fakePolicy) string {
	cfg := xmlDeclRE.ReplaceAll(p.config, nil)
	return fmt.Sprintf("<%s><Id>%s</Id><LastModifiedTime>%s</LastModifiedTime>%s</%s>",
		shape, p.id, p.modified.Format(time.RFC3339), cfg, shape)
}

func (f *CloudFront) policyResponse(shape string, p *fakePolicy) *Response {
	body := `<?xml version="1.0"?>` + strings.Replace(f.policyXML(shape, p), "<"+shape+">", `<`+shape+` xmlns="`+cloudFrontNS+`">`, 1)
	r := xmlResponse(http.StatusOK, body)
	r.Header.Set("ETag", p.etag)
	return r
}

func xmlResponse(status int, body string) *Response {
	h := http.Header{}
	h.Set("Content-Type", "text/xml")
	h.Set("X-Amzn-Requestid", "berth-test-proxy")
	return &Response{StatusCode: status, Header: h, Body: []byte(body)}
}

// elem is the text of the first <name> element of an XML document.
func elem(doc []byte, name string) string {
	re := regexp.MustCompile(`<` + regexp.QuoteMeta(name) + `>([^<]*)</`)
	if m := re.FindSubmatch(doc); m != nil {
		return string(m[1])
	}
	return ""
}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
