package clients_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/aws/awstest"
	"github.com/berth-dev/berth/internal/aws/clients"
)

func TestMain(m *testing.M) {
	code := m.Run()
	awstest.Stop()
	os.Exit(code)
}

// motoAccount is the account moto answers for with any credentials.
const motoAccount = "123456789012"

func load(t *testing.T, region string) *clients.Clients {
	t.Helper()
	c, err := clients.Load(context.Background(), region)
	require.NoError(t, err)
	return c
}

// TestEndpointFromEnvironment: AWS_ENDPOINT_URL points every client at
// moto, and AWS_ENDPOINT_URL_<SERVICE> one service, as the SDK defines them.
func TestEndpointFromEnvironment(t *testing.T) {
	ctx := context.Background()
	moto := awstest.UseMoto(t)

	c := load(t, "")
	assert.Equal(t, awstest.Region, c.Region())
	id, err := c.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	require.NoError(t, err)
	assert.Equal(t, motoAccount, aws.ToString(id.Account))
	account, err := c.AccountID(ctx)
	require.NoError(t, err)
	assert.Equal(t, motoAccount, account)
	_, err = c.ECS.ListClusters(ctx, &ecs.ListClustersInput{})
	require.NoError(t, err)

	// The generic variable names a closed port; STS's own wins over it.
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	t.Setenv("AWS_ENDPOINT_URL_STS", moto)
	c = load(t, "")
	id, err = c.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	require.NoError(t, err)
	assert.Equal(t, motoAccount, aws.ToString(id.Account))
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = c.ECS.ListClusters(short, &ecs.ListClustersInput{})
	assert.Error(t, err, "ECS should have gone to the closed port AWS_ENDPOINT_URL names")
}

// TestRegion: the environment's region overrides the chain's; without
// either, Load says how to name one.
func TestRegion(t *testing.T) {
	awstest.UseEndpoint(t, "http://127.0.0.1:1")
	assert.Equal(t, "us-east-2", load(t, "us-east-2").Region())
	assert.Equal(t, "us-east-1", load(t, "us-east-2").ACM.Options().Region, "CloudFront takes certificates from us-east-1 only")
	assert.Equal(t, awstest.Region, load(t, "").Region())

	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	_, err := clients.Load(context.Background(), "")
	require.ErrorIs(t, err, clients.ErrNoRegion)
	assert.Contains(t, err.Error(), "region:")
	assert.Contains(t, err.Error(), "AWS_REGION")
	assert.Equal(t, "ap-south-1", load(t, "ap-south-1").Region())
}

// TestRetries: throttling and transient errors are retried until the call
// succeeds, beyond the SDK's default of 3 attempts; other errors are not.
func TestRetries(t *testing.T) {
	ctx := context.Background()
	p := awstest.StartProxy(t, awstest.MotoEndpoint(t), "")
	awstest.UseEndpoint(t, p.URL)
	c := load(t, "")

	cases := []struct {
		name   string
		op     string
		fails  int
		status int
		code   string
		call   func() error
	}{
		{"json throttled once", "ecs:ListClusters", 1, 400, "ThrottlingException", func() error {
			_, err := c.ECS.ListClusters(ctx, &ecs.ListClustersInput{})
			return err
		}},
		{"query throttled 3 times", "sts:GetCallerIdentity", 3, 400, "Throttling", func() error {
			_, err := c.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			return err
		}},
		{"unavailable once", "ecr:DescribeRepositories", 1, 503, "ServiceUnavailableException", func() error {
			_, err := c.ECR.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{})
			return err
		}},
		{"ec2 request limit once", "ec2:DescribeVpcs", 1, 400, "RequestLimitExceeded", func() error {
			_, err := c.EC2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{})
			return err
		}},
		{"dynamodb throttled once", "dynamodb:ListTables", 1, 400, "ThrottlingException", func() error {
			_, err := c.DynamoDB.ListTables(ctx, &dynamodb.ListTablesInput{})
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p.Handle(tc.op, awstest.Times(tc.fails, awstest.Fail(tc.status, tc.code, "Rate exceeded")))
			require.NoError(t, tc.call())
			assert.Equal(t, tc.fails+1, p.Count(tc.op), "requests the proxy saw")
		})
	}

	t.Run("access denied is not retried", func(t *testing.T) {
		p.Handle("ecs:ListServices", awstest.Fail(http.StatusBadRequest, "AccessDeniedException", "not allowed"))
		_, err := c.ECS.ListServices(ctx, &ecs.ListServicesInput{})
		var apiErr smithy.APIError
		require.True(t, errors.As(err, &apiErr), "%v", err)
		assert.Equal(t, "AccessDeniedException", apiErr.ErrorCode())
		assert.Equal(t, 1, p.Count("ecs:ListServices"))
	})
}

// TestMissingProfile: a profile no file has is named, with what to do.
func TestMissingProfile(t *testing.T) {
	awstest.UseEndpoint(t, "http://127.0.0.1:1")
	t.Setenv("AWS_PROFILE", "nosuch")
	_, err := clients.Load(context.Background(), "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"nosuch"`)
	assert.Contains(t, err.Error(), "AWS_PROFILE")
}
