package cdn

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudfront/types"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/berth-dev/berth/internal/spec"
)

// SecretName is the Secrets Manager secret holding the origin secret of an
// app in an environment: the value of X-Berth-Origin-Secret.
func SecretName(env, app string) string { return "berth/" + env + "/" + app + "/edge-origin-secret" }

func newSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// OriginSecret returns the app's origin secret, making it the first time.
func (m *Manager) OriginSecret(ctx context.Context) (string, error) {
	n := SecretName(m.env, m.app)
	out, err := m.c.SecretsManager.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(n)})
	if err == nil {
		return aws.ToString(out.SecretString), nil
	}
	if apiCode(err) != "ResourceNotFoundException" {
		return "", fmt.Errorf("read the origin secret %s: %w", n, err)
	}
	v := newSecret()
	_, err = m.c.SecretsManager.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(n), SecretString: aws.String(v),
		Description: aws.String("berth: the header CloudFront sends the load balancer of " + m.app + " (" + m.env + ")"),
		Tags:        []smtypes.Tag{{Key: aws.String(TagApp), Value: aws.String(m.app)}, {Key: aws.String(TagEnv), Value: aws.String(m.env)}},
	})
	if apiCode(err) == "ResourceExistsException" { // another berth made it meanwhile
		return m.OriginSecret(ctx)
	}
	if err != nil {
		return "", fmt.Errorf("create the origin secret %s: %w", n, err)
	}
	return v, nil
}

// tagRotating marks the origin secret while a rotation runs, with the
// version ID of the value it replaces: the load balancer must then accept
// that value as well as the current one, since a distribution may still
// send it. A rotation cut off leaves the tag; AcceptedSecrets keeps both
// values accepted until the next rotation finishes it.
const tagRotating = "berth:rotating"

// AcceptedSecrets are the origin secret values the load balancer must
// accept now: the current one, and the previous one too while a rotation
// is under way or was cut off.
func (m *Manager) AcceptedSecrets(ctx context.Context) ([]string, error) {
	cur, err := m.OriginSecret(ctx)
	if err != nil {
		return nil, err
	}
	prev, rotating, err := m.rotation(ctx)
	if err != nil || !rotating || prev == "" || prev == cur {
		return []string{cur}, err
	}
	return []string{prev, cur}, nil
}

// rotation says whether a rotation is under way (the secret carries
// tagRotating, whose value is the version the rotation replaces) and, if
// so, that previous value.
func (m *Manager) rotation(ctx context.Context) (prev string, rotating bool, err error) {
	n := SecretName(m.env, m.app)
	d, err := m.c.SecretsManager.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(n)})
	if err != nil {
		return "", false, fmt.Errorf("read the origin secret %s: %w", n, err)
	}
	i := slices.IndexFunc(d.Tags, func(t smtypes.Tag) bool { return aws.ToString(t.Key) == tagRotating })
	if i < 0 {
		return "", false, nil
	}
	out, err := m.c.SecretsManager.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(n), VersionId: d.Tags[i].Value})
	if err != nil {
		return "", true, fmt.Errorf("read the previous origin secret of %s: %w", n, err)
	}
	return aws.ToString(out.SecretString), true, nil
}

// RotateOriginSecret replaces the origin secret with a new one without
// refusing a request on the way: accept must make the load balancer
// accept exactly the values it is given (SecretCondition on its rules);
// it is called with the old and the new value, then, once every
// distribution of the app sends the new one and is deployed, with the new
// one alone. A rotation cut off half-way leaves both accepted (the secret
// keeps tagRotating, which AcceptedSecrets reads); the next one first
// finishes it. finished says whether it did.
func (m *Manager) RotateOriginSecret(ctx context.Context, accept func(ctx context.Context, values []string) error) (finished bool, err error) {
	n := SecretName(m.env, m.app)
	if _, err := m.OriginSecret(ctx); err != nil { // made if it is not yet
		return false, err
	}
	cur, err := m.c.SecretsManager.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(n)})
	if err != nil {
		return false, fmt.Errorf("read the origin secret %s: %w", n, err)
	}
	old := aws.ToString(cur.SecretString)
	prev, rotating, err := m.rotation(ctx)
	if err != nil {
		return false, err
	}
	if rotating {
		values := []string{old}
		if prev != "" && prev != old {
			values = []string{prev, old}
		}
		if err := accept(ctx, values); err != nil {
			return false, fmt.Errorf("let the load balancer accept the origin secrets: %w", err)
		}
		if err := m.sendSecret(ctx, old, accept); err != nil {
			return false, fmt.Errorf("finish the rotation that was cut off: %w", err)
		}
		m.progressf("finished the rotation of the origin secret of %s (%s) that was cut off", m.app, m.env)
	}
	v := newSecret()
	if _, err := m.c.SecretsManager.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(n), Tags: []smtypes.Tag{{Key: aws.String(tagRotating), Value: cur.VersionId}}}); err != nil {
		return rotating, fmt.Errorf("mark the origin secret %s as rotating: %w", n, err)
	}
	if err := accept(ctx, []string{old, v}); err != nil {
		return rotating, fmt.Errorf("let the load balancer accept the new origin secret: %w", err)
	}
	if _, err := m.c.SecretsManager.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(n), SecretString: aws.String(v)}); err != nil {
		return rotating, fmt.Errorf("store the new origin secret in %s: %w", n, err)
	}
	if err := m.sendSecret(ctx, v, accept); err != nil {
		return rotating, err
	}
	m.progressf("origin secret of %s (%s) rotated", m.app, m.env)
	return rotating, nil
}

// sendSecret ends a rotation, with the load balancer accepting the old
// value and v: every distribution of the app is made to send v and waited
// for, then the load balancer accepts v alone and the rotation mark goes.
func (m *Manager) sendSecret(ctx context.Context, v string, accept func(ctx context.Context, values []string) error) error {
	var ids []string
	for _, name := range m.order {
		ep := m.eps[name]
		id, err := m.distributionID(ctx, ep)
		if err != nil {
			return err
		}
		if id == "" {
			continue
		}
		// A shift's staging distribution sends its share with the
		// secret too.
		live, err := m.live(ctx, name, id)
		if err != nil {
			return err
		}
		targets := []string{id}
		if live.Staging != nil && live.Staging.DomainName != "" {
			sid, err := m.byDomain(ctx, live.Staging.DomainName)
			if err != nil {
				return err
			}
			if sid != "" {
				targets = append(targets, sid)
			}
		}
		for _, d := range targets {
			changed, err := m.update(ctx, d, func(dc *cftypes.DistributionConfig) (bool, error) {
				return m.setSecret(dc, ep, v)
			})
			if err != nil {
				return fmt.Errorf("entrypoint %s: send the new origin secret (distribution %s): %w", name, d, err)
			}
			if changed {
				ids = append(ids, d)
			}
		}
	}
	for _, id := range ids {
		if err := m.waitDeployed(ctx, id); err != nil {
			return err
		}
	}
	if err := accept(ctx, []string{v}); err != nil {
		return fmt.Errorf("make the load balancer refuse the old origin secret: %w", err)
	}
	n := SecretName(m.env, m.app)
	if _, err := m.c.SecretsManager.UntagResource(ctx, &secretsmanager.UntagResourceInput{SecretId: aws.String(n), TagKeys: []string{tagRotating}}); err != nil {
		return fmt.Errorf("mark the rotation of %s done: %w", n, err)
	}
	return nil
}

// setSecret rewrites the secret header of berth's service origins.
func (m *Manager) setSecret(dc *cftypes.DistributionConfig, ep *spec.Entrypoint, secret string) (bool, error) {
	changed := false
	if dc.Origins == nil {
		return false, nil
	}
	for _, o := range dc.Origins.Items {
		ref := refOf(o)
		if !IsService(ref) || o.CustomHeaders == nil {
			continue
		}
		for i, h := range o.CustomHeaders.Items {
			if aws.ToString(h.HeaderName) == HeaderOriginSecret && aws.ToString(h.HeaderValue) != secret {
				o.CustomHeaders.Items[i].HeaderValue = aws.String(secret)
				changed = true
			}
		}
	}
	return changed, nil
}

// SecretCondition is the listener rule condition that lets a request
// through only when it carries one of the origin secret values.
func SecretCondition(values ...string) elbtypes.RuleCondition {
	return elbtypes.RuleCondition{Field: aws.String("http-header"), HttpHeaderConfig: &elbtypes.HttpHeaderConditionConfig{
		HttpHeaderName: aws.String(HeaderOriginSecret), Values: slices.Clone(values),
	}}
}

// ServiceCondition is the listener rule condition matching the requests a
// distribution sends for a service.
func ServiceCondition(service string) elbtypes.RuleCondition {
	return elbtypes.RuleCondition{Field: aws.String("http-header"), HttpHeaderConfig: &elbtypes.HttpHeaderConditionConfig{
		HttpHeaderName: aws.String(HeaderService), Values: []string{service},
	}}
}

// ALBRule is a listener rule the app's load balancer needs for its
// entrypoints: requests from a distribution (carrying the secret) for a
// service go to that service's serving slot.
type ALBRule struct {
	// Key identifies the rule among the app's ("edge:SERVICE").
	Key string
	// Service is where it forwards.
	Service string
	// Conditions are the secret's and the service's header conditions.
	Conditions []elbtypes.RuleCondition
}

// ALBRules are the rules the load balancer needs so the distributions of
// sp's entrypoints reach each berth service, given the secret values it
// accepts (OriginSecret's; two during a rotation): one per service with a
// port, since a switch or shift may name any of them, and none when sp has
// no entrypoint. With them, awsenv must also add SecretCondition(secrets...)
// to every other rule of the app and keep none without it, so that a
// request that did not come through CloudFront gets the listener's 404:
// the load balancer accepts only requests carrying the secret.
func ALBRules(sp *spec.Spec, secrets []string) []ALBRule {
	if len(sp.Edge) == 0 {
		return nil
	}
	var out []ALBRule
	for _, name := range sp.ServiceOrder {
		svc := sp.Services[name]
		if svc == nil || svc.Port == 0 {
			continue
		}
		out = append(out, ALBRule{Key: "edge:" + name, Service: name,
			Conditions: []elbtypes.RuleCondition{SecretCondition(secrets...), ServiceCondition(name)}})
	}
	return out
}
