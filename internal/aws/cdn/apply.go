package cdn

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudfront/types"

	"github.com/berth-dev/berth/internal/spec"
)

// Applied is what Apply did to an entrypoint's distribution.
type Applied struct {
	Entrypoint     string
	DistributionID string
	// DomainName is the distribution's *.cloudfront.net name, which the
	// entrypoint's hosts point at (CNAME or alias), once and for all.
	DomainName string
	Created    bool // berth created the distribution now
	Adopted    bool // the entrypoint names an existing distribution
	Changed    bool // its configuration was updated
	// Certificate is the ACM certificate of the hosts; while it is not
	// issued, its DNS validation records are to be printed and the
	// distribution answers on DomainName only.
	Certificate *Certificate
	// Unmapped lists the entrypoint's keys CloudFront does not carry out.
	Unmapped []string
}

// Apply makes an entrypoint's distribution match the spec, creating it
// when berth owns it and it does not exist. On an adopted distribution it
// changes only what berth owns: its origins (berth-*), the default
// behavior's cache policy when cache: is set, and berth's tags; the
// active origin, aliases, certificate and everything else are left. On a
// distribution berth created it also sets the aliases once the
// certificate is issued. The active origin is set only at creation: later
// it moves only by Switch. Apply does not wait for the change to deploy
// (WaitDeployed does).
func (m *Manager) Apply(ctx context.Context, name string) (*Applied, error) {
	ep, err := m.entrypoint(name)
	if err != nil {
		return nil, err
	}
	res := &Applied{Entrypoint: name, Adopted: ep.Distribution != "", Unmapped: Unmapped(ep)}
	secret := ""
	if slices.ContainsFunc(OriginRefs(ep), IsService) {
		if secret, err = m.OriginSecret(ctx); err != nil {
			return nil, err
		}
	}
	policy := ""
	if !res.Adopted || ep.Cache != nil {
		if policy, err = m.ensureCachePolicy(ctx, ep); err != nil {
			return nil, err
		}
	}
	if !res.Adopted && len(ep.Hosts) > 0 {
		if res.Certificate, err = m.Certificate(ctx, ep.Hosts); err != nil {
			return nil, err
		}
	}
	id, err := m.distributionID(ctx, ep)
	if err != nil {
		return nil, err
	}
	mutate := func(dc *cftypes.DistributionConfig) (bool, error) {
		return m.configure(dc, ep, secret, policy, res.Certificate, !res.Adopted)
	}
	if id == "" {
		dc := &cftypes.DistributionConfig{
			CallerReference: aws.String("berth-" + m.app + "-" + m.env + "-" + name + "-" + strconv.FormatInt(m.opts.Now().UnixNano(), 36)),
			Comment:         aws.String(m.comment(name)),
			Enabled:         aws.Bool(true),
			Origins:         &cftypes.Origins{Quantity: aws.Int32(0)},
			DefaultCacheBehavior: &cftypes.DefaultCacheBehavior{
				AllowedMethods: &cftypes.AllowedMethods{
					Quantity: aws.Int32(7),
					Items: []cftypes.Method{cftypes.MethodGet, cftypes.MethodHead, cftypes.MethodOptions, cftypes.MethodPut,
						cftypes.MethodPost, cftypes.MethodPatch, cftypes.MethodDelete},
					CachedMethods: &cftypes.CachedMethods{Quantity: aws.Int32(2), Items: []cftypes.Method{cftypes.MethodGet, cftypes.MethodHead}},
				},
				ViewerProtocolPolicy: cftypes.ViewerProtocolPolicyRedirectToHttps,
			},
			Aliases:           &cftypes.Aliases{Quantity: aws.Int32(0)},
			ViewerCertificate: &cftypes.ViewerCertificate{CloudFrontDefaultCertificate: aws.Bool(true)},
			HttpVersion:       cftypes.HttpVersionHttp2and3,
			IsIPV6Enabled:     aws.Bool(true),
			PriceClass:        cftypes.PriceClassPriceClassAll,
		}
		if _, err := mutate(dc); err != nil {
			return nil, err
		}
		active, _, _ := m.ensureOrigin(dc, ep, ep.Origin, secret)
		dc.DefaultCacheBehavior.TargetOriginId = aws.String(active)
		out, err := m.cf.CreateDistributionWithTags(ctx, &cloudfront.CreateDistributionWithTagsInput{
			DistributionConfigWithTags: &cftypes.DistributionConfigWithTags{DistributionConfig: dc, Tags: &cftypes.Tags{Items: m.tags(name)}},
		})
		if err != nil {
			return nil, fmt.Errorf("create the CloudFront distribution of entrypoint %s: %w", name, err)
		}
		res.DistributionID, res.DomainName, res.Created, res.Changed = aws.ToString(out.Distribution.Id), aws.ToString(out.Distribution.DomainName), true, true
		m.progressf("entrypoint %s: distribution %s created (%s), origin %s", name, res.DistributionID, res.DomainName, ep.Origin)
		return res, nil
	}
	res.DistributionID = id
	if res.Changed, err = m.update(ctx, id, mutate); err != nil {
		if apiCode(err) == "NoSuchDistribution" && res.Adopted {
			return nil, fmt.Errorf("edge.%s.distribution: CloudFront distribution %s does not exist in this account; fix the ID (aws cloudfront list-distributions)", name, id)
		}
		return nil, fmt.Errorf("entrypoint %s: %w", name, err)
	}
	if res.Adopted {
		arn, domain, err := m.arn(ctx, id)
		if err != nil {
			return nil, err
		}
		res.DomainName = domain
		if _, err := m.cf.TagResource(ctx, &cloudfront.TagResourceInput{Resource: aws.String(arn), Tags: &cftypes.Tags{Items: m.tags(name)}}); err != nil {
			return nil, fmt.Errorf("tag CloudFront distribution %s: %w", id, err)
		}
	} else {
		_, res.DomainName, err = m.arn(ctx, id)
		if err != nil {
			return nil, err
		}
	}
	if res.Changed {
		m.progressf("entrypoint %s: distribution %s updated", name, id)
	}
	return res, nil
}

// WaitDeployed waits until the entrypoint's distribution is Deployed.
func (m *Manager) WaitDeployed(ctx context.Context, name string) error {
	_, id, err := m.mustFind(ctx, name)
	if err != nil {
		return err
	}
	return m.waitDeployed(ctx, id)
}

func (m *Manager) arn(ctx context.Context, id string) (arn, domain string, err error) {
	out, err := m.cf.GetDistribution(ctx, &cloudfront.GetDistributionInput{Id: aws.String(id)})
	if err != nil {
		return "", "", fmt.Errorf("read CloudFront distribution %s: %w", id, err)
	}
	return aws.ToString(out.Distribution.ARN), aws.ToString(out.Distribution.DomainName), nil
}

// configure sets what berth owns in dc; owned adds what only a
// distribution berth created has set (viewer protocol, aliases and
// certificate).
func (m *Manager) configure(dc *cftypes.DistributionConfig, ep *spec.Entrypoint, secret, policy string, cert *Certificate, owned bool) (bool, error) {
	changed := false
	for _, ref := range OriginRefs(ep) {
		_, c, err := m.ensureOrigin(dc, ep, ref, secret)
		if err != nil {
			return false, fmt.Errorf("entrypoint %s: %w", ep.Name, err)
		}
		changed = changed || c
	}
	b := dc.DefaultCacheBehavior
	if b == nil {
		return false, fmt.Errorf("entrypoint %s: the distribution has no default cache behavior", ep.Name)
	}
	set := func(p **string, v string) {
		if aws.ToString(*p) != v {
			*p, changed = aws.String(v), true
		}
	}
	if policy != "" {
		if aws.ToString(b.CachePolicyId) != policy {
			// The legacy cache settings and a cache policy exclude each other.
			b.CachePolicyId, b.ForwardedValues, b.MinTTL, b.DefaultTTL, b.MaxTTL, changed = aws.String(policy), nil, nil, nil, nil, true
		}
		set(&b.OriginRequestPolicyId, OriginRequestPolicyAllViewerExceptHost)
		if aws.ToBool(b.Compress) != ep.Compress {
			b.Compress, changed = aws.Bool(ep.Compress), true
		}
	}
	if !owned {
		return changed, nil
	}
	vpp := cftypes.ViewerProtocolPolicyRedirectToHttps
	if ep.RedirectHTTPS != nil && !*ep.RedirectHTTPS {
		vpp = cftypes.ViewerProtocolPolicyAllowAll
	}
	if b.ViewerProtocolPolicy != vpp {
		b.ViewerProtocolPolicy, changed = vpp, true
	}
	if cert != nil && cert.Status == CertIssued {
		if dc.Aliases == nil || !slices.Equal(sorted(dc.Aliases.Items), sorted(ep.Hosts)) {
			dc.Aliases, changed = &cftypes.Aliases{Quantity: aws.Int32(int32(len(ep.Hosts))), Items: slices.Clone(ep.Hosts)}, true
		}
		vc := dc.ViewerCertificate
		if vc == nil || aws.ToString(vc.ACMCertificateArn) != cert.ARN {
			dc.ViewerCertificate, changed = &cftypes.ViewerCertificate{
				ACMCertificateArn: aws.String(cert.ARN), SSLSupportMethod: cftypes.SSLSupportMethodSniOnly,
				MinimumProtocolVersion: cftypes.MinimumProtocolVersionTLSv122021,
			}, true
		}
	}
	return changed, nil
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
