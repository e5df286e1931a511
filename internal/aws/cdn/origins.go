package cdn

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudfront/types"

	"github.com/berth-dev/berth/internal/spec"
)

// Headers CloudFront adds to every request it sends the load balancer: the
// secret proves the request came through a distribution of this app, the
// service names which berth service it is for (the Host is the load
// balancer's own name, so its host rules cannot tell).
const (
	HeaderOriginSecret = "X-Berth-Origin-Secret"
	HeaderService      = "X-Berth-Service"
)

// originIDPrefix marks the origins berth owns in a distribution; an
// adopted distribution's other origins are left as they are.
const originIDPrefix = "berth-"

// OriginRefs are the origins an entrypoint names, in order, each once:
// its origin, its failover's, its routes'.
func OriginRefs(ep *spec.Entrypoint) []string {
	var out []string
	add := func(r string) {
		for _, o := range out {
			if o == r {
				return
			}
		}
		if r != "" {
			out = append(out, r)
		}
	}
	add(ep.Origin)
	if ep.Failover != nil {
		add(ep.Failover.Origin)
	}
	for _, r := range ep.Routes {
		add(r.Origin)
	}
	return out
}

// IsService reports whether an origin reference names a berth service of
// the app (reached through its load balancer).
func IsService(ref string) bool { return !spec.IsOriginURL(ref) && !strings.Contains(ref, "/") }

// OriginID is the CloudFront origin ID berth gives an origin reference:
// berth-SERVICE, or berth-HOST[-PATH] for a URL.
func OriginID(ref string) string {
	if IsService(ref) {
		return originIDPrefix + ref
	}
	u, err := url.Parse(ref)
	if err != nil {
		return originIDPrefix + ref
	}
	id := originIDPrefix + u.Host + strings.ReplaceAll(strings.TrimRight(u.Path, "/"), "/", "-")
	if len(id) > 128 {
		id = id[:128]
	}
	return id
}

// readTimeout maps timeout: to the origin's response timeout, which
// CloudFront bounds to 1-60 s without a quota increase.
func readTimeout(d time.Duration) int32 {
	switch {
	case d <= 0:
		return 30
	case d < time.Second:
		return 1
	case d > 60*time.Second:
		return 60
	}
	return int32(d / time.Second)
}

// origin is the CloudFront origin berth wants for ref. secret is the
// origin secret, needed for a service.
func (m *Manager) origin(ep *spec.Entrypoint, ref, secret string) (cftypes.Origin, error) {
	rt := aws.Int32(readTimeout(ep.Timeout))
	ssl := &cftypes.OriginSslProtocols{Quantity: aws.Int32(1), Items: []cftypes.SslProtocol{cftypes.SslProtocolTLSv12}}
	switch {
	case IsService(ref):
		if m.alb.DNSName == "" {
			return cftypes.Origin{}, fmt.Errorf("%w: service %s is reached through the app's load balancer, which %s (%s) does not have yet; deploy the service first", ErrOrigin, ref, m.app, m.env)
		}
		policy := cftypes.OriginProtocolPolicyHttpOnly
		if m.alb.HTTPS {
			policy = cftypes.OriginProtocolPolicyHttpsOnly
		}
		return cftypes.Origin{
			Id: aws.String(OriginID(ref)), DomainName: aws.String(m.alb.DNSName), OriginPath: aws.String(""),
			CustomHeaders: &cftypes.CustomHeaders{Quantity: aws.Int32(2), Items: []cftypes.OriginCustomHeader{
				{HeaderName: aws.String(HeaderOriginSecret), HeaderValue: aws.String(secret)},
				{HeaderName: aws.String(HeaderService), HeaderValue: aws.String(ref)},
			}},
			CustomOriginConfig: &cftypes.CustomOriginConfig{
				HTTPPort: aws.Int32(80), HTTPSPort: aws.Int32(443), OriginProtocolPolicy: policy,
				OriginSslProtocols: ssl, OriginReadTimeout: rt,
			},
		}, nil
	case spec.IsOriginURL(ref):
		u, err := url.Parse(ref)
		if err != nil {
			return cftypes.Origin{}, fmt.Errorf("%w: %s: %v", ErrOrigin, ref, err)
		}
		if u.Scheme != "https" {
			return cftypes.Origin{}, fmt.Errorf("%w: %s: CloudFront reaches URL origins over HTTPS only; write https://%s", ErrOrigin, ref, u.Host)
		}
		port := int32(443)
		if p := u.Port(); p != "" {
			n, _ := strconv.Atoi(p)
			port = int32(n)
		}
		return cftypes.Origin{
			Id: aws.String(OriginID(ref)), DomainName: aws.String(u.Hostname()), OriginPath: aws.String(strings.TrimRight(u.Path, "/")),
			CustomHeaders: &cftypes.CustomHeaders{Quantity: aws.Int32(0)},
			CustomOriginConfig: &cftypes.CustomOriginConfig{
				HTTPPort: aws.Int32(80), HTTPSPort: aws.Int32(port), OriginProtocolPolicy: cftypes.OriginProtocolPolicyHttpsOnly,
				OriginSslProtocols: ssl, OriginReadTimeout: rt,
			},
		}, nil
	}
	return cftypes.Origin{}, fmt.Errorf("%w: %s is a service of another app; on CloudFront name it by its URL (url: https://...)", ErrOrigin, ref)
}

// refOf is the origin reference a distribution's origin stands for: the
// service its X-Berth-Service header names, else its https URL.
func refOf(o cftypes.Origin) string {
	if o.CustomHeaders != nil {
		for _, h := range o.CustomHeaders.Items {
			if strings.EqualFold(aws.ToString(h.HeaderName), HeaderService) {
				return aws.ToString(h.HeaderValue)
			}
		}
	}
	scheme := "https://"
	if c := o.CustomOriginConfig; c != nil && c.OriginProtocolPolicy == cftypes.OriginProtocolPolicyHttpOnly {
		scheme = "http://"
	}
	return scheme + aws.ToString(o.DomainName) + aws.ToString(o.OriginPath)
}

// findOrigin is the index of the distribution's origin standing for ref:
// berth's by ID, or, in an adopted distribution, one of the user's with
// the same address (kept as it is). -1 when none.
func findOrigin(dc *cftypes.DistributionConfig, ref string) int {
	if dc.Origins == nil {
		return -1
	}
	id := OriginID(ref)
	for i, o := range dc.Origins.Items {
		if aws.ToString(o.Id) == id {
			return i
		}
	}
	for i, o := range dc.Origins.Items {
		if refOf(o) == ref || refOf(o)+"/" == ref {
			return i
		}
	}
	return -1
}

// ensureOrigin adds or updates ref's origin in dc and returns its ID;
// it reports whether dc changed. A user's origin found by address is left
// as it is.
func (m *Manager) ensureOrigin(dc *cftypes.DistributionConfig, ep *spec.Entrypoint, ref, secret string) (string, bool, error) {
	want, err := m.origin(ep, ref, secret)
	if err != nil {
		return "", false, err
	}
	if dc.Origins == nil {
		dc.Origins = &cftypes.Origins{Quantity: aws.Int32(0)}
	}
	i := findOrigin(dc, ref)
	if i < 0 {
		dc.Origins.Items = append(dc.Origins.Items, want)
		dc.Origins.Quantity = aws.Int32(int32(len(dc.Origins.Items)))
		return aws.ToString(want.Id), true, nil
	}
	have := dc.Origins.Items[i]
	if !strings.HasPrefix(aws.ToString(have.Id), originIDPrefix) {
		return aws.ToString(have.Id), false, nil
	}
	if sameOrigin(have, want) {
		return aws.ToString(have.Id), false, nil
	}
	// Keep what berth does not set (shield, connection attempts).
	have.DomainName, have.OriginPath, have.CustomHeaders = want.DomainName, want.OriginPath, want.CustomHeaders
	if have.CustomOriginConfig == nil {
		have.CustomOriginConfig = want.CustomOriginConfig
	} else {
		c := have.CustomOriginConfig
		c.HTTPPort, c.HTTPSPort, c.OriginProtocolPolicy, c.OriginReadTimeout = want.CustomOriginConfig.HTTPPort,
			want.CustomOriginConfig.HTTPSPort, want.CustomOriginConfig.OriginProtocolPolicy, want.CustomOriginConfig.OriginReadTimeout
		if c.OriginSslProtocols == nil || aws.ToInt32(c.OriginSslProtocols.Quantity) == 0 {
			c.OriginSslProtocols = want.CustomOriginConfig.OriginSslProtocols
		}
	}
	dc.Origins.Items[i] = have
	return aws.ToString(have.Id), true, nil
}

func sameOrigin(a, b cftypes.Origin) bool {
	if aws.ToString(a.DomainName) != aws.ToString(b.DomainName) || aws.ToString(a.OriginPath) != aws.ToString(b.OriginPath) {
		return false
	}
	if headerMap(a) != headerMap(b) {
		return false
	}
	ca, cb := a.CustomOriginConfig, b.CustomOriginConfig
	if ca == nil || cb == nil {
		return ca == cb
	}
	return aws.ToInt32(ca.HTTPPort) == aws.ToInt32(cb.HTTPPort) && aws.ToInt32(ca.HTTPSPort) == aws.ToInt32(cb.HTTPSPort) &&
		ca.OriginProtocolPolicy == cb.OriginProtocolPolicy && aws.ToInt32(ca.OriginReadTimeout) == aws.ToInt32(cb.OriginReadTimeout)
}

func headerMap(o cftypes.Origin) string {
	var b strings.Builder
	if o.CustomHeaders != nil {
		for _, h := range o.CustomHeaders.Items {
			b.WriteString(strings.ToLower(aws.ToString(h.HeaderName)) + "=" + aws.ToString(h.HeaderValue) + ";")
		}
	}
	return b.String()
}
