package clients

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	"github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	"github.com/aws/aws-sdk-go-v2/service/apprunner"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/servicediscovery"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Retry settings: how many times one call is tried in all (unless
// AWS_MAX_ATTEMPTS or the profile's max_attempts says otherwise) and the
// longest wait between two tries.
const (
	MaxAttempts = 10
	MaxBackoff  = 20 * time.Second
)

// ErrNoRegion is returned by Load when neither the environment's region nor
// the standard chain names one.
var ErrNoRegion = errors.New("no AWS region: set region: under the environment in berth.yaml, or AWS_REGION")

// Clients holds the configuration and one client per AWS service berth
// calls. The clients are safe for concurrent use.
type Clients struct {
	// Config is the configuration every client was built from.
	Config aws.Config

	ECS            *ecs.Client
	ECR            *ecr.Client
	EC2            *ec2.Client
	ELB            *elasticloadbalancingv2.Client
	Logs           *cloudwatchlogs.Client
	CloudWatch     *cloudwatch.Client // metrics: the move's guard
	SecretsManager *secretsmanager.Client
	DynamoDB       *dynamodb.Client
	IAM            *iam.Client
	STS            *sts.Client
	// AutoScaling is Application Auto Scaling (the ECS services' task
	// counts), Scheduler EventBridge Scheduler (scheduled tasks, the warm
	// slots' cool-down), ServiceDiscovery Cloud Map (service names).
	AutoScaling      *applicationautoscaling.Client
	Scheduler        *scheduler.Client
	ServiceDiscovery *servicediscovery.Client
	// AppRunner drives existing App Runner services (internal/aws/apprunner).
	AppRunner *apprunner.Client
	// CloudFront is global; ACM calls us-east-1 (CertificateRegion), the
	// only region whose certificates a distribution can use.
	CloudFront *cloudfront.Client
	ACM        *acm.Client

	mu      sync.Mutex
	account string
}

// Load reads the standard configuration chain and builds the clients.
// region, when not empty, overrides the chain's region (it is the
// environment's region: key in berth.yaml); without either Load fails with
// ErrNoRegion. Credentials are not checked here: the first call reports
// missing or expired ones.
func Load(ctx context.Context, region string) (*Clients, error) {
	opts := []func(*config.LoadOptions) error{
		config.WithRetryer(NewRetryer),
	}
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	var noProfile config.SharedConfigProfileNotExistError
	if errors.As(err, &noProfile) {
		return nil, fmt.Errorf("AWS profile %q is in no AWS config or credentials file: set AWS_PROFILE to one that is (aws configure list-profiles)", noProfile.Profile)
	}
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, ErrNoRegion
	}
	return New(cfg), nil
}

// New builds the clients from a configuration already loaded.
func New(cfg aws.Config) *Clients {
	return &Clients{
		Config:         cfg,
		ECS:            ecs.NewFromConfig(cfg),
		ECR:            ecr.NewFromConfig(cfg),
		EC2:            ec2.NewFromConfig(cfg),
		ELB:            elasticloadbalancingv2.NewFromConfig(cfg),
		Logs:           cloudwatchlogs.NewFromConfig(cfg),
		CloudWatch:     cloudwatch.NewFromConfig(cfg),
		SecretsManager: secretsmanager.NewFromConfig(cfg),
		DynamoDB:       dynamodb.NewFromConfig(cfg),
		IAM:            iam.NewFromConfig(cfg),
		STS:            sts.NewFromConfig(cfg),

		AutoScaling:      applicationautoscaling.NewFromConfig(cfg),
		Scheduler:        scheduler.NewFromConfig(cfg),
		ServiceDiscovery: servicediscovery.NewFromConfig(cfg),
		AppRunner:        apprunner.NewFromConfig(cfg),

		CloudFront: cloudfront.NewFromConfig(cfg),
		ACM:        acm.NewFromConfig(cfg, func(o *acm.Options) { o.Region = CertificateRegion }),
	}
}

// CertificateRegion is where a CloudFront distribution's ACM certificate
// must be.
const CertificateRegion = "us-east-1"

// NewRetryer is the retryer Load installs: the SDK's standard retryer
// (throttling errors, 5xx answers, connection resets and timeouts) with
// MaxAttempts tries, MaxBackoff at most between two, and no client-side
// retry quota, so a long burst of throttling slows berth down instead of
// failing it.
func NewRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = MaxAttempts
		o.MaxBackoff = MaxBackoff
		o.RateLimiter = ratelimit.None
	})
}

// Region is the region the clients call.
func (c *Clients) Region() string { return c.Config.Region }

// AccountID is the account the credentials belong to (STS
// GetCallerIdentity, asked until it answers once).
func (c *Clients) AccountID(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.account != "" {
		return c.account, nil
	}
	out, err := c.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", fmt.Errorf("AWS credentials: %w", err)
	}
	c.account = aws.ToString(out.Account)
	return c.account, nil
}
