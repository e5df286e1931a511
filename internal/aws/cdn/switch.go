package cdn

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudfront/types"
)

// Entrypoint is an entrypoint's distribution as CloudFront has it now.
type Entrypoint struct {
	Name           string   `json:"name"`
	DistributionID string   `json:"distribution_id"`
	DomainName     string   `json:"domain_name"`
	Aliases        []string `json:"aliases"`
	// Status is CloudFront's: InProgress while a change deploys, then
	// Deployed.
	Status  string `json:"status"`
	Enabled bool   `json:"enabled"`
	// Active is the origin the default cache behavior targets: a service
	// or a URL, or the ID of an origin berth does not own.
	Active  string   `json:"active"`
	Origins []Origin `json:"origins"`
	// Staging is the continuous-deployment share, when one is attached.
	Staging *Staging `json:"staging,omitempty"`
}

// Origin is one origin of a distribution.
type Origin struct {
	ID     string `json:"id"`
	Ref    string `json:"ref"` // service or URL
	Domain string `json:"domain"`
	Active bool   `json:"active"`
	Berth  bool   `json:"berth"` // berth owns it (ID berth-*)
}

// Staging is a continuous-deployment policy's share.
type Staging struct {
	PolicyID   string  `json:"policy_id"`
	Enabled    bool    `json:"enabled"`
	Percent    float64 `json:"percent"`
	DomainName string  `json:"domain_name"`
}

// Switch moves all of an entrypoint's traffic to the origin to at once: the
// default cache behavior's target, in one UpdateDistribution with If-Match
// (the origin added first if the distribution lacks it), retried when the
// distribution changed meanwhile; a continuous-deployment policy is
// detached, ending a shift. It then waits until the distribution is
// Deployed. No DNS record changes. A shift between two services (ALB
// weights) is awsenv's to end.
func (m *Manager) Switch(ctx context.Context, name, to string) (*Entrypoint, error) {
	ep, id, err := m.mustFind(ctx, name)
	if err != nil {
		return nil, err
	}
	secret := ""
	if IsService(to) {
		if secret, err = m.OriginSecret(ctx); err != nil {
			return nil, err
		}
	}
	detached := ""
	changed, err := m.update(ctx, id, func(dc *cftypes.DistributionConfig) (bool, error) {
		oid, changed, err := m.ensureOrigin(dc, ep, to, secret)
		if err != nil {
			return false, err
		}
		b := dc.DefaultCacheBehavior
		if aws.ToString(b.TargetOriginId) != oid {
			b.TargetOriginId, changed = aws.String(oid), true
		}
		detached = aws.ToString(dc.ContinuousDeploymentPolicyId)
		if detached != "" {
			dc.ContinuousDeploymentPolicyId, changed = aws.String(""), true
		}
		return changed, nil
	})
	if err != nil {
		return nil, fmt.Errorf("switch entrypoint %s to %s: %w", name, to, err)
	}
	if changed {
		m.progressf("entrypoint %s: default origin set to %s; waiting for CloudFront to deploy it", name, to)
	}
	if err := m.waitDeployed(ctx, id); err != nil {
		return nil, err
	}
	if detached != "" {
		// The policy of the shift just ended is left over. (Its staging
		// copy stays until destroy: each shift copies the primary anew,
		// so none serves an outdated configuration.)
		// The switch is done: a policy left over is a warning, not a
		// failure (a move must not undo a switch for it).
		if err := m.deletePolicy(ctx, detached); err != nil {
			m.progressf("entrypoint %s: warning: the ended shift's continuous deployment policy %s is left over: %v", name, detached, err)
		} else {
			m.progressf("entrypoint %s: shift ended, continuous deployment policy %s deleted", name, detached)
		}
	}
	return m.Show(ctx, name)
}

// deletePolicy deletes a continuous deployment policy no distribution
// names (gone already is fine).
func (m *Manager) deletePolicy(ctx context.Context, id string) error {
	got, err := m.cf.GetContinuousDeploymentPolicy(ctx, &cloudfront.GetContinuousDeploymentPolicyInput{Id: aws.String(id)})
	if apiCode(err) == "NoSuchContinuousDeploymentPolicy" {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read continuous deployment policy %s: %w", id, err)
	}
	_, err = m.cf.DeleteContinuousDeploymentPolicy(ctx, &cloudfront.DeleteContinuousDeploymentPolicyInput{Id: aws.String(id), IfMatch: got.ETag})
	if err != nil && apiCode(err) != "NoSuchContinuousDeploymentPolicy" {
		return fmt.Errorf("delete continuous deployment policy %s: %w", id, err)
	}
	return nil
}

// Invalidation is a CloudFront invalidation made.
type Invalidation struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// Invalidate removes paths (each starting with /, * allowed at the end)
// from the entrypoint's CloudFront caches.
func (m *Manager) Invalidate(ctx context.Context, name string, paths []string) (*Invalidation, error) {
	if len(paths) == 0 {
		paths = []string{"/*"}
	}
	for _, p := range paths {
		if !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("invalid path %q: CloudFront paths start with /, e.g. /index.html or /img/*", p)
		}
	}
	_, id, err := m.mustFind(ctx, name)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	out, err := m.cf.CreateInvalidation(ctx, &cloudfront.CreateInvalidationInput{
		DistributionId: aws.String(id),
		InvalidationBatch: &cftypes.InvalidationBatch{
			CallerReference: aws.String("berth-" + strconv.FormatInt(m.opts.Now().UnixNano(), 36) + "-" + hex.EncodeToString(b)),
			Paths:           &cftypes.Paths{Quantity: aws.Int32(int32(len(paths))), Items: paths},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("invalidate %s on entrypoint %s: %w", strings.Join(paths, " "), name, err)
	}
	return &Invalidation{ID: aws.ToString(out.Invalidation.Id), Status: aws.ToString(out.Invalidation.Status)}, nil
}

// List reads the live distribution of every entrypoint of the spec that
// has one, in the spec's order.
func (m *Manager) List(ctx context.Context) ([]*Entrypoint, error) {
	out := []*Entrypoint{}
	for _, name := range m.order {
		id, err := m.distributionID(ctx, m.eps[name])
		if err != nil {
			return nil, err
		}
		if id == "" {
			out = append(out, &Entrypoint{Name: name, Status: "not created"})
			continue
		}
		e, err := m.live(ctx, name, id)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// Show reads an entrypoint's live distribution.
func (m *Manager) Show(ctx context.Context, name string) (*Entrypoint, error) {
	_, id, err := m.mustFind(ctx, name)
	if err != nil {
		return nil, err
	}
	return m.live(ctx, name, id)
}

func (m *Manager) live(ctx context.Context, name, id string) (*Entrypoint, error) {
	out, err := m.cf.GetDistribution(ctx, &cloudfront.GetDistributionInput{Id: aws.String(id)})
	if err != nil {
		return nil, fmt.Errorf("read CloudFront distribution %s of entrypoint %s: %w", id, name, err)
	}
	d := out.Distribution
	dc := d.DistributionConfig
	e := &Entrypoint{Name: name, DistributionID: id, DomainName: aws.ToString(d.DomainName), Status: aws.ToString(d.Status),
		Enabled: aws.ToBool(dc.Enabled), Aliases: []string{}}
	if dc.Aliases != nil {
		e.Aliases = append(e.Aliases, dc.Aliases.Items...)
	}
	target := ""
	if dc.DefaultCacheBehavior != nil {
		target = aws.ToString(dc.DefaultCacheBehavior.TargetOriginId)
	}
	e.Active = target
	if dc.Origins != nil {
		for _, o := range dc.Origins.Items {
			oid := aws.ToString(o.Id)
			x := Origin{ID: oid, Ref: refOf(o), Domain: aws.ToString(o.DomainName), Active: oid == target, Berth: strings.HasPrefix(oid, originIDPrefix)}
			if x.Active {
				e.Active = x.Ref
			}
			e.Origins = append(e.Origins, x)
		}
	}
	if pid := aws.ToString(dc.ContinuousDeploymentPolicyId); pid != "" {
		p, err := m.cf.GetContinuousDeploymentPolicy(ctx, &cloudfront.GetContinuousDeploymentPolicyInput{Id: aws.String(pid)})
		if err != nil {
			return nil, fmt.Errorf("read continuous deployment policy %s of entrypoint %s: %w", pid, name, err)
		}
		e.Staging = stagingOf(pid, p.ContinuousDeploymentPolicy.ContinuousDeploymentPolicyConfig)
	}
	return e, nil
}

func stagingOf(id string, c *cftypes.ContinuousDeploymentPolicyConfig) *Staging {
	s := &Staging{PolicyID: id, Enabled: aws.ToBool(c.Enabled)}
	if c.StagingDistributionDnsNames != nil && len(c.StagingDistributionDnsNames.Items) > 0 {
		s.DomainName = c.StagingDistributionDnsNames.Items[0]
	}
	if t := c.TrafficConfig; t != nil && t.SingleWeightConfig != nil {
		s.Percent = float64(int(float64(aws.ToFloat32(t.SingleWeightConfig.Weight))*10000+0.5)) / 100
	}
	return s
}
