package awsenv

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/apprunner"
	artypes "github.com/aws/aws-sdk-go-v2/service/apprunner/types"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/aws/apprunner"
	"github.com/berth-dev/berth/internal/aws/awstest"
	"github.com/berth-dev/berth/internal/aws/clients"
	"github.com/berth-dev/berth/internal/spec"
	"github.com/berth-dev/berth/internal/testutil"
)

// A berth killed while App Runner runs its update (after UpdateService was
// accepted, before the operation was seen to end) leaves its revision
// "deploying" and its journal; the next verb asks App Runner what serves
// and records the revision active, since App Runner finished it.
func TestAppRunnerDeployCutOffIsSettled(t *testing.T) {
	ctx := context.Background()
	local := testutil.TestAppImage(t)
	p := awstest.UseProxy(t)
	awstest.SimulateECS(t, p)
	fake := awstest.SimulateAppRunner(t, p)
	fake.SetPolls(0)
	c, err := clients.Load(ctx, "")
	require.NoError(t, err)
	const imageA = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop-web@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	created, err := c.AppRunner.CreateService(ctx, &sdk.CreateServiceInput{
		ServiceName: aws.String(testutil.UniqueName(t, "ar")),
		SourceConfiguration: &artypes.SourceConfiguration{ImageRepository: &artypes.ImageRepository{
			ImageIdentifier: aws.String(imageA), ImageRepositoryType: artypes.ImageRepositoryTypeEcr,
			ImageConfiguration: &artypes.ImageConfiguration{Port: aws.String("8080")},
		}, AuthenticationConfiguration: &artypes.AuthenticationConfiguration{AccessRoleArn: aws.String("arn:aws:iam::123456789012:role/AppRunnerECRAccess")}},
	})
	require.NoError(t, err)
	arn := aws.ToString(created.Service.ServiceArn)
	_, err = c.AppRunner.DescribeService(ctx, &sdk.DescribeServiceInput{ServiceArn: aws.String(arn)})
	require.NoError(t, err)

	imp, err := apprunner.New(c).Import(ctx, arn, "web")
	require.NoError(t, err)
	sp, err := spec.Parse("berth.yaml", []byte("app: "+testutil.UniqueName(t, "a")+"\nenvironments:\n  prod:\n    engine: aws\nservices:\n"+indentYAML(imp.YAML)))
	require.NoError(t, err)
	ec, err := sp.Environment("prod")
	require.NoError(t, err)
	open := func(o Options) *Env {
		e, err := OpenWith(ctx, c, sp.App, ec, o)
		require.NoError(t, err)
		return e
	}
	first := open(Options{Lease: 2 * time.Second})
	n, err := first.AdoptAppRunner(ctx, imp)
	require.NoError(t, err)
	require.Equal(t, 1, n)

	// The berth dies at the first call after App Runner accepted the update.
	var armed, dead atomic.Bool
	p.Intercept(func(call *awstest.Call) *awstest.Response {
		if dead.Load() {
			return call.Error(400, "BerthKilled", "this berth process is dead")
		}
		if armed.Load() {
			dead.Store(true)
			return call.Error(400, "BerthKilled", "this berth process is dead")
		}
		if call.Op() == "apprunner:UpdateService" {
			armed.Store(true)
		}
		return nil
	})
	m := first.Deploy(ctx, sp, nil, map[string]string{"web": local}, nil)
	require.False(t, m.OK)
	p.Intercept(nil)
	imageB := fake.ServingImage(arn)
	require.NotEqual(t, imageA, imageB, "App Runner finished the update without berth")

	next := open(Options{LockWait: 30 * time.Second}) // the default lease: a short one can run out on a loaded machine while this berth works
	var phases []string
	m = next.Deploy(ctx, sp, nil, map[string]string{"web": local}, func(msg api.Message) { phases = append(phases, msg.Text) })
	require.True(t, m.OK, m.Error)
	assert.Contains(t, strings.Join(phases, "\n"), "App Runner finished the interrupted deploy of revision 2")
	revs, err := next.Revisions(ctx, "web")
	require.NoError(t, err)
	states := map[int]string{}
	for _, r := range revs {
		states[r.Number] = r.Status
	}
	assert.Equal(t, map[int]string{1: "retired", 2: "previous", 3: "active"}, states)
}

func indentYAML(s string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = "  " + l
		}
	}
	return strings.Join(lines, "")
}

// An App Runner service that runs an ECR image by tag is imported with
// its revision 1 pinned by digest, so a rollback to it brings back that
// image even after the tag moved.
func TestAppRunnerImportPinsTheTagByDigest(t *testing.T) {
	ctx := context.Background()
	p := awstest.UseProxy(t)
	awstest.SimulateAppRunner(t, p).SetPolls(0)
	c, err := clients.Load(ctx, "")
	require.NoError(t, err)
	repo := testutil.UniqueName(t, "shop-web")
	_, err = c.ECR.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String(repo)})
	require.NoError(t, err)
	manifest := `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[]}`
	put, err := c.ECR.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String(repo), ImageManifest: aws.String(manifest), ImageTag: aws.String("v1")})
	require.NoError(t, err)
	digest := aws.ToString(put.Image.ImageId.ImageDigest)
	require.True(t, strings.HasPrefix(digest, "sha256:"), digest)
	host := "123456789012.dkr.ecr." + awstest.Region + ".amazonaws.com"
	created, err := c.AppRunner.CreateService(ctx, &sdk.CreateServiceInput{
		ServiceName: aws.String(testutil.UniqueName(t, "ar")),
		SourceConfiguration: &artypes.SourceConfiguration{ImageRepository: &artypes.ImageRepository{
			ImageIdentifier: aws.String(host + "/" + repo + ":v1"), ImageRepositoryType: artypes.ImageRepositoryTypeEcr,
			ImageConfiguration: &artypes.ImageConfiguration{Port: aws.String("8080")},
		}, AuthenticationConfiguration: &artypes.AuthenticationConfiguration{AccessRoleArn: aws.String("arn:aws:iam::123456789012:role/AppRunnerECRAccess")}},
	})
	require.NoError(t, err)
	imp, err := apprunner.New(c).Import(ctx, aws.ToString(created.Service.ServiceArn), "web")
	require.NoError(t, err)
	sp, err := spec.Parse("berth.yaml", []byte("app: "+testutil.UniqueName(t, "a")+"\nenvironments:\n  prod:\n    engine: aws\nservices:\n"+indentYAML(imp.YAML)))
	require.NoError(t, err)
	ec, err := sp.Environment("prod")
	require.NoError(t, err)
	e, err := OpenWith(ctx, c, sp.App, ec, Options{})
	require.NoError(t, err)
	_, err = e.AdoptAppRunner(ctx, imp)
	require.NoError(t, err)
	revs, err := e.Revisions(ctx, "web")
	require.NoError(t, err)
	require.Len(t, revs, 1)
	assert.Equal(t, host+"/"+repo+"@"+digest, revs[0].Image)
}
