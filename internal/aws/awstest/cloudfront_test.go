package awstest

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudfront/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type cfShape struct {
	Type    string `json:"type"`
	Members map[string]struct {
		Shape        string `json:"shape"`
		Location     string `json:"location"`
		LocationName string `json:"locationName"`
	} `json:"members"`
	Member struct {
		Shape        string `json:"shape"`
		LocationName string `json:"locationName"`
	} `json:"member"`
	Payload string `json:"payload"`
	Error   struct {
		HTTPStatusCode int `json:"httpStatusCode"`
	} `json:"error"`
}

type cfModel struct {
	Operations map[string]struct {
		HTTP struct {
			Method       string `json:"method"`
			RequestURI   string `json:"requestUri"`
			ResponseCode int    `json:"responseCode"`
		} `json:"http"`
		Output struct{ Shape string }   `json:"output"`
		Errors []struct{ Shape string } `json:"errors"`
	} `json:"operations"`
	Shapes map[string]cfShape `json:"shapes"`
}

// cloudFrontModel reads botocore's CloudFront model (installed with the aws
// CLI and moto); skipped without it unless BERTH_REQUIRE_MOTO is set.
func cloudFrontModel(t *testing.T) *cfModel {
	t.Helper()
	var m cfModel
	require.NoError(t, json.Unmarshal(BotocoreModel(t, "cloudfront", "2020-05-31"), &m))
	return &m
}

// xmlNode is a parsed XML element.
type xmlNode struct {
	XMLName  xml.Name
	Children []xmlNode `xml:",any"`
	Text     string    `xml:",chardata"`
}

// conformXML lists every element of n that the model's shape does not
// define.
func conformXML(m *cfModel, shape, path string, n xmlNode) []string {
	s, ok := m.Shapes[shape]
	if !ok {
		return []string{path + ": no shape " + shape}
	}
	var out []string
	switch s.Type {
	case "structure":
		for _, c := range n.Children {
			found := false
			for name, mem := range s.Members {
				if mem.Location != "" {
					continue
				}
				if c.XMLName.Local == name || c.XMLName.Local == mem.LocationName {
					out = append(out, conformXML(m, mem.Shape, path+"."+c.XMLName.Local, c)...)
					found = true
					break
				}
			}
			if !found {
				out = append(out, path+"."+c.XMLName.Local+": the model's "+shape+" has no such member")
			}
		}
	case "list":
		want := s.Member.LocationName
		for _, c := range n.Children {
			if want != "" && c.XMLName.Local != want {
				out = append(out, path+": list item "+c.XMLName.Local+", the model says "+want)
			}
			out = append(out, conformXML(m, s.Member.Shape, path+"[]", c)...)
		}
	default:
		if len(n.Children) > 0 {
			out = append(out, path+": a "+s.Type+" with elements")
		}
	}
	return out
}

// TestCloudFrontFakeMatchesModel drives the fake with the real SDK client
// and checks each answer the fake writes or rewrites against botocore's
// model: the operation's method, URI and status, and every element of the
// body a member of the operation's output shape.
func TestCloudFrontFakeMatchesModel(t *testing.T) {
	model := cloudFrontModel(t)
	ctx := context.Background()
	p := StartProxy(t, MotoEndpoint(t), "")
	UseEndpoint(t, p.URL)
	f := FakeCloudFront(t, p)

	type seen struct {
		method, path string
		resp         *Response
	}
	var mu sync.Mutex
	var got []seen
	p.Handle("cloudfront:*", func(c *Call) *Response {
		r := f.serve(c)
		if r == nil {
			return nil // moto's own answer, not the fake's
		}
		mu.Lock()
		got = append(got, seen{c.Request.Method, c.Request.URL.RequestURI(), r})
		mu.Unlock()
		return r
	})

	cl := cloudfront.New(cloudfront.Options{Region: "us-east-1", BaseEndpoint: aws.String(p.URL),
		Credentials: staticCreds{}, RetryMaxAttempts: 1})
	made, err := cl.CreateDistributionWithTags(ctx, &cloudfront.CreateDistributionWithTagsInput{DistributionConfigWithTags: &cftypes.DistributionConfigWithTags{
		DistributionConfig: &cftypes.DistributionConfig{
			CallerReference: aws.String("model-" + newETag()), Comment: aws.String("model"), Enabled: aws.Bool(true),
			Origins: &cftypes.Origins{Quantity: aws.Int32(1), Items: []cftypes.Origin{{Id: aws.String("o"), DomainName: aws.String("o.example.com"),
				CustomOriginConfig: &cftypes.CustomOriginConfig{HTTPPort: aws.Int32(80), HTTPSPort: aws.Int32(443), OriginProtocolPolicy: cftypes.OriginProtocolPolicyHttpsOnly}}}},
			DefaultCacheBehavior: &cftypes.DefaultCacheBehavior{TargetOriginId: aws.String("o"), ViewerProtocolPolicy: cftypes.ViewerProtocolPolicyAllowAll},
		},
		Tags: &cftypes.Tags{Items: []cftypes.Tag{{Key: aws.String("k"), Value: aws.String("v")}}},
	}})
	require.NoError(t, err)
	tags, err := cl.ListTagsForResource(ctx, &cloudfront.ListTagsForResourceInput{Resource: made.Distribution.ARN})
	require.NoError(t, err)
	assert.Len(t, tags.Tags.Items, 1, "the tags of CreateDistributionWithTags are kept")
	id := made.Distribution.Id
	list, err := cl.ListDistributions(ctx, &cloudfront.ListDistributionsInput{})
	require.NoError(t, err)
	for _, d := range list.DistributionList.Items {
		if aws.ToString(d.Id) == aws.ToString(id) {
			assert.Equal(t, "model", aws.ToString(d.Comment))
		}
	}
	dc, err := cl.GetDistributionConfig(ctx, &cloudfront.GetDistributionConfigInput{Id: id})
	require.NoError(t, err)
	_, err = cl.UpdateDistribution(ctx, &cloudfront.UpdateDistributionInput{Id: id, IfMatch: aws.String("stale"), DistributionConfig: dc.DistributionConfig})
	var stale *cftypes.PreconditionFailed
	require.ErrorAs(t, err, &stale, "the SDK reads the fake's 412 as PreconditionFailed")
	_, err = cl.UpdateDistribution(ctx, &cloudfront.UpdateDistributionInput{Id: id, IfMatch: dc.ETag, DistributionConfig: dc.DistributionConfig})
	require.NoError(t, err)
	d, err := cl.GetDistribution(ctx, &cloudfront.GetDistributionInput{Id: id})
	require.NoError(t, err)
	cp, err := cl.CopyDistribution(ctx, &cloudfront.CopyDistributionInput{PrimaryDistributionId: id, IfMatch: d.ETag, Staging: aws.Bool(true), CallerReference: aws.String("copy-" + newETag())})
	require.NoError(t, err)
	assert.True(t, aws.ToBool(cp.Distribution.DistributionConfig.Staging))
	pc := &cftypes.CachePolicyConfig{Name: aws.String("model-" + newETag()), MinTTL: aws.Int64(0), DefaultTTL: aws.Int64(5), MaxTTL: aws.Int64(10),
		ParametersInCacheKeyAndForwardedToOrigin: &cftypes.ParametersInCacheKeyAndForwardedToOrigin{
			EnableAcceptEncodingGzip: aws.Bool(true),
			CookiesConfig:            &cftypes.CachePolicyCookiesConfig{CookieBehavior: cftypes.CachePolicyCookieBehaviorWhitelist, Cookies: &cftypes.CookieNames{Quantity: aws.Int32(1), Items: []string{"s"}}},
			HeadersConfig:            &cftypes.CachePolicyHeadersConfig{HeaderBehavior: cftypes.CachePolicyHeaderBehaviorNone},
			QueryStringsConfig:       &cftypes.CachePolicyQueryStringsConfig{QueryStringBehavior: cftypes.CachePolicyQueryStringBehaviorAll},
		}}
	cpol, err := cl.CreateCachePolicy(ctx, &cloudfront.CreateCachePolicyInput{CachePolicyConfig: pc})
	require.NoError(t, err)
	gp, err := cl.GetCachePolicy(ctx, &cloudfront.GetCachePolicyInput{Id: cpol.CachePolicy.Id})
	require.NoError(t, err)
	assert.Equal(t, []string{"s"}, gp.CachePolicy.CachePolicyConfig.ParametersInCacheKeyAndForwardedToOrigin.CookiesConfig.Cookies.Items)
	_, err = cl.UpdateCachePolicy(ctx, &cloudfront.UpdateCachePolicyInput{Id: cpol.CachePolicy.Id, IfMatch: gp.ETag, CachePolicyConfig: pc})
	require.NoError(t, err)
	_, err = cl.ListCachePolicies(ctx, &cloudfront.ListCachePoliciesInput{Type: cftypes.CachePolicyTypeCustom})
	require.NoError(t, err)
	cdc := &cftypes.ContinuousDeploymentPolicyConfig{Enabled: aws.Bool(true),
		StagingDistributionDnsNames: &cftypes.StagingDistributionDnsNames{Quantity: aws.Int32(1), Items: []string{aws.ToString(cp.Distribution.DomainName)}},
		TrafficConfig: &cftypes.TrafficConfig{Type: cftypes.ContinuousDeploymentPolicyTypeSingleWeight,
			SingleWeightConfig: &cftypes.ContinuousDeploymentSingleWeightConfig{Weight: aws.Float32(0.1)}}}
	cd, err := cl.CreateContinuousDeploymentPolicy(ctx, &cloudfront.CreateContinuousDeploymentPolicyInput{ContinuousDeploymentPolicyConfig: cdc})
	require.NoError(t, err)
	gcd, err := cl.GetContinuousDeploymentPolicy(ctx, &cloudfront.GetContinuousDeploymentPolicyInput{Id: cd.ContinuousDeploymentPolicy.Id})
	require.NoError(t, err)
	assert.InDelta(t, 0.1, aws.ToFloat32(gcd.ContinuousDeploymentPolicy.ContinuousDeploymentPolicyConfig.TrafficConfig.SingleWeightConfig.Weight), 0.001)
	_, err = cl.UpdateContinuousDeploymentPolicy(ctx, &cloudfront.UpdateContinuousDeploymentPolicyInput{Id: cd.ContinuousDeploymentPolicy.Id, IfMatch: gcd.ETag, ContinuousDeploymentPolicyConfig: cdc})
	require.NoError(t, err)

	// The check itself finds an element the model lacks.
	assert.NotEmpty(t, conformXML(model, "CachePolicy", "x", xmlNode{Children: []xmlNode{{XMLName: xml.Name{Local: "Bogus"}}}}))

	// Every answer the fake wrote or rewrote, against the model.
	ops := map[string]bool{}
	checked := 0
	for _, s := range got {
		op := matchOperation(model, s.method, s.path)
		require.NotEmpty(t, op, "%s %s is no CloudFront operation of the model", s.method, s.path)
		ops[op] = true
		o := model.Operations[op]
		if s.resp.StatusCode/100 != 2 {
			var e struct {
				Error struct{ Code string } `xml:"Error"`
			}
			require.NoError(t, xml.Unmarshal(s.resp.Body, &e))
			es := model.Shapes[e.Error.Code]
			assert.Equal(t, es.Error.HTTPStatusCode, s.resp.StatusCode, "%s: error %s", op, e.Error.Code)
			listed := false
			for _, x := range o.Errors {
				listed = listed || x.Shape == e.Error.Code
			}
			assert.True(t, listed, "%s does not list the error %s", op, e.Error.Code)
			continue
		}
		want := o.HTTP.ResponseCode
		if want == 0 {
			want = 200
		}
		assert.Equal(t, want, s.resp.StatusCode, op)
		out := model.Shapes[o.Output.Shape]
		if out.Payload == "" {
			continue
		}
		for name, mem := range out.Members {
			if mem.Location == "header" && name == "ETag" {
				assert.NotEmpty(t, s.resp.Header.Get("ETag"), "%s answers an ETag", op)
			}
		}
		var root xmlNode
		require.NoError(t, xml.Unmarshal(s.resp.Body, &root), op)
		payload := out.Members[out.Payload].Shape
		assert.Equal(t, payload, root.XMLName.Local, "%s: root element", op)
		assert.Empty(t, conformXML(model, payload, op, root))
		checked++
	}
	assert.GreaterOrEqual(t, checked, 12, "bodies checked")
	for _, op := range []string{"CreateDistributionWithTags", "ListDistributions", "GetDistributionConfig", "UpdateDistribution", "GetDistribution",
		"CopyDistribution", "CreateCachePolicy", "GetCachePolicy", "UpdateCachePolicy", "ListCachePolicies",
		"CreateContinuousDeploymentPolicy", "GetContinuousDeploymentPolicy", "UpdateContinuousDeploymentPolicy"} {
		assert.True(t, ops[op], "the fake's answer to %s was not checked", op)
	}
}

type staticCreds struct{}

func (staticCreds) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: "testing", SecretAccessKey: "testing"}, nil
}

// matchOperation names the model's operation for a method and request URI.
func matchOperation(m *cfModel, method, uri string) string {
	path, query, _ := strings.Cut(uri, "?")
	best := ""
	for name, o := range m.Operations {
		if o.HTTP.Method != method {
			continue
		}
		mp, mq, _ := strings.Cut(o.HTTP.RequestURI, "?")
		re := "^" + regexp.MustCompile(`\\\{[^}]+\\\}`).ReplaceAllString(regexp.QuoteMeta(mp), `[^/]+`) + "$"
		if !regexp.MustCompile(re).MatchString(path) {
			continue
		}
		if mq != "" && !strings.Contains(query, strings.SplitN(mq, "=", 2)[0]) {
			continue
		}
		if mq == "" && best != "" {
			continue
		}
		best = name
	}
	return best
}
