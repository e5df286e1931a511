package cdn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudfront/types"
	"github.com/aws/smithy-go"

	"github.com/berth-dev/berth/internal/aws/clients"
	"github.com/berth-dev/berth/internal/spec"
)

// Tag keys every distribution berth creates carries; an adopted one gets
// them too, so both are found the same way.
const (
	TagApp        = "berth.app"
	TagEnv        = "berth.env"
	TagEntrypoint = "berth.entrypoint"
)

// Defaults of Options.
const (
	DefaultPollInterval  = 15 * time.Second
	DefaultDeployTimeout = 25 * time.Minute
	// DefaultUpdateAttempts bounds the reads and writes of one change when
	// someone else keeps changing the distribution (PreconditionFailed).
	DefaultUpdateAttempts = 5
)

// Errors callers may test for.
var (
	ErrUnknownEntrypoint = errors.New("unknown entrypoint")
	ErrNotDeployed       = errors.New("distribution not deployed")
	ErrShareRefused      = errors.New("share refused")
	ErrOrigin            = errors.New("origin not usable on CloudFront")
)

// ALB is what the Manager knows of the app's load balancer, the origin of
// every berth service.
type ALB struct {
	// DNSName is the load balancer's DNS name.
	DNSName string
	// HTTPS makes CloudFront reach it on 443 (https-only); the load
	// balancer then needs an HTTPS listener whose certificate names
	// DNSName or a name pointing at it. False: port 80, http-only.
	HTTPS bool
}

// Options are the caller's choices that are not in the spec.
type Options struct {
	// PollInterval is the wait between two GetDistribution calls while a
	// change deploys (0: DefaultPollInterval).
	PollInterval time.Duration
	// DeployTimeout bounds that wait (0: DefaultDeployTimeout).
	DeployTimeout time.Duration
	// UpdateAttempts bounds the tries of one change (0: DefaultUpdateAttempts).
	UpdateAttempts int
	// Progress receives one line per step and while waiting (nil: none).
	Progress io.Writer
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Manager carries the entrypoints of one app in one AWS environment.
type Manager struct {
	app, env string
	eps      map[string]*spec.Entrypoint
	order    []string
	alb      ALB
	c        *clients.Clients
	cf       *cloudfront.Client
	opts     Options
}

// New makes a Manager for the entrypoints of sp in environment env, whose
// services the load balancer alb serves.
func New(c *clients.Clients, sp *spec.Spec, env string, alb ALB, opts Options) *Manager {
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.DeployTimeout <= 0 {
		opts.DeployTimeout = DefaultDeployTimeout
	}
	if opts.UpdateAttempts <= 0 {
		opts.UpdateAttempts = DefaultUpdateAttempts
	}
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m := &Manager{app: sp.App, env: env, eps: sp.Edge, alb: alb, c: c, cf: c.CloudFront, opts: opts}
	for _, n := range sp.EdgeOrder {
		if sp.Edge[n] != nil {
			m.order = append(m.order, n)
		}
	}
	return m
}

func (m *Manager) progressf(format string, args ...any) {
	fmt.Fprintf(m.opts.Progress, format+"\n", args...)
}

// entrypoint is the spec's entrypoint name.
func (m *Manager) entrypoint(name string) (*spec.Entrypoint, error) {
	ep := m.eps[name]
	if ep == nil {
		return nil, fmt.Errorf("%w %q: entrypoints are %s (edge: in berth.yaml)", ErrUnknownEntrypoint, name, strings.Join(m.order, ", "))
	}
	return ep, nil
}

// CommentPrefix begins the Comment of every distribution berth creates;
// an adopted one keeps its own.
const CommentPrefix = "berth: entrypoint "

// comment is the Comment of a distribution berth creates (at most 128
// characters), by which it is found again.
func (m *Manager) comment(name string) string {
	c := CommentPrefix + name + " of " + m.app + " (" + m.env + ")"
	if len(c) > 128 {
		c = c[:128]
	}
	return c
}

func (m *Manager) tags(name string) []cftypes.Tag {
	return []cftypes.Tag{
		{Key: aws.String(TagApp), Value: aws.String(m.app)},
		{Key: aws.String(TagEnv), Value: aws.String(m.env)},
		{Key: aws.String(TagEntrypoint), Value: aws.String(name)},
	}
}

// distributionID finds the distribution of an entrypoint: the adopted
// one's ID, or the one berth created, by its comment and tags. "" when
// none exists yet.
func (m *Manager) distributionID(ctx context.Context, ep *spec.Entrypoint) (string, error) {
	if ep.Distribution != "" {
		return ep.Distribution, nil
	}
	want := m.comment(ep.Name)
	p := cloudfront.NewListDistributionsPaginator(m.cf, &cloudfront.ListDistributionsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return "", fmt.Errorf("list CloudFront distributions: %w", err)
		}
		if page.DistributionList == nil {
			break
		}
		for _, d := range page.DistributionList.Items {
			if aws.ToString(d.Comment) != want || aws.ToBool(d.Staging) {
				continue
			}
			ok, err := m.owned(ctx, aws.ToString(d.ARN), ep.Name)
			if err != nil {
				return "", err
			}
			if ok {
				return aws.ToString(d.Id), nil
			}
		}
	}
	return "", nil
}

// owned reports whether the distribution's tags name this entrypoint.
func (m *Manager) owned(ctx context.Context, arn, name string) (bool, error) {
	out, err := m.cf.ListTagsForResource(ctx, &cloudfront.ListTagsForResourceInput{Resource: aws.String(arn)})
	if err != nil {
		return false, fmt.Errorf("read the tags of %s: %w", arn, err)
	}
	got := map[string]string{}
	if out.Tags != nil {
		for _, t := range out.Tags.Items {
			got[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
	}
	return got[TagApp] == m.app && got[TagEnv] == m.env && got[TagEntrypoint] == name, nil
}

// mustFind is distributionID with a user's error when there is none.
func (m *Manager) mustFind(ctx context.Context, name string) (*spec.Entrypoint, string, error) {
	ep, err := m.entrypoint(name)
	if err != nil {
		return nil, "", err
	}
	id, err := m.distributionID(ctx, ep)
	if err != nil {
		return nil, "", err
	}
	if id == "" {
		return nil, "", fmt.Errorf("entrypoint %s of %s (%s) has no CloudFront distribution yet; run berth deploy --env %s first", name, m.app, m.env, m.env)
	}
	return ep, id, nil
}

// apiCode is the error code of an AWS API error, or "".
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}
