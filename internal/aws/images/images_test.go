package images_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/aws/awstest"
	"github.com/berth-dev/berth/internal/aws/clients"
	"github.com/berth-dev/berth/internal/aws/images"
	"github.com/berth-dev/berth/internal/testutil"
)

func TestMain(m *testing.M) {
	code := m.Run()
	awstest.Stop()
	os.Exit(code)
}

// countingRegistry puts a reverse proxy in front of the loopback registry
// that counts blob uploads started, and returns its host:port.
func countingRegistry(t *testing.T, uploads *atomic.Int64) string {
	t.Helper()
	target, err := url.Parse("http://" + awstest.Registry(t))
	require.NoError(t, err)
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/blobs/uploads/") {
			uploads.Add(1)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestPush pushes a locally built image to "ECR" (moto for the API, the
// loopback registry for the layers): the repository is created with its
// tags, the image is in the registry under the digest Push returns, and a
// second push of the same image uploads nothing and returns the same ref.
func TestPush(t *testing.T) {
	ctx := context.Background()
	image := testutil.TestAppImage(t)
	var uploads atomic.Int64
	registry := countingRegistry(t, &uploads)
	p := awstest.StartProxy(t, awstest.MotoEndpoint(t), registry)
	awstest.UseEndpoint(t, p.URL)
	c, err := clients.Load(ctx, "")
	require.NoError(t, err)

	repo := "berth/" + testutil.UniqueName(t, "web")
	tags := map[string]string{"berth.app": "shop", "berth.env": "prod", "berth.service": "web"}
	ref, err := images.Push(ctx, c, image, repo, tags)
	require.NoError(t, err)
	m := regexp.MustCompile(`^` + regexp.QuoteMeta(registry+"/"+repo) + `@(sha256:[0-9a-f]{64})$`).FindStringSubmatch(ref)
	require.NotNil(t, m, "ref %q is not %s/%s@sha256:...", ref, registry, repo)
	digest := m[1]
	assert.Positive(t, uploads.Load(), "blobs uploaded by the first push")

	// The repository, as ECR describes it, with its tags.
	out, err := c.ECR.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{repo}})
	require.NoError(t, err)
	require.Len(t, out.Repositories, 1)
	assert.Equal(t, registry+"/"+repo, aws.ToString(out.Repositories[0].RepositoryUri))
	tagged, err := c.ECR.ListTagsForResource(ctx, &ecr.ListTagsForResourceInput{ResourceArn: out.Repositories[0].RepositoryArn})
	require.NoError(t, err)
	got := map[string]string{}
	for _, tag := range tagged.Tags {
		got[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
	}
	assert.Equal(t, tags, got)

	// The manifest is in the registry by that digest, and its config is the
	// local image's.
	req, err := http.NewRequest(http.MethodGet, "http://"+awstest.Registry(t)+"/v2/"+repo+"/manifests/"+digest, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	sum := sha256.Sum256(body)
	assert.Equal(t, digest, "sha256:"+hex.EncodeToString(sum[:]))
	var manifest struct {
		Config struct{ Digest string }
		Layers []struct{ Digest string }
	}
	require.NoError(t, json.Unmarshal(body, &manifest))
	inspect, err := testutil.DockerClient(t).ImageInspect(ctx, image)
	require.NoError(t, err)
	assert.Equal(t, inspect.ID, manifest.Config.Digest)
	assert.NotEmpty(t, manifest.Layers)

	// Again, by image ID this time: nothing uploaded, the same reference.
	before := uploads.Load()
	again, err := images.Push(ctx, c, inspect.ID, repo, tags)
	require.NoError(t, err)
	assert.Equal(t, ref, again)
	assert.Equal(t, before, uploads.Load(), "blobs uploaded by the second push")
}

// TestPushMissingImage: the error names the image and the repository.
func TestPushMissingImage(t *testing.T) {
	testutil.RequireDocker(t)
	awstest.UseProxy(t)
	c, err := clients.Load(context.Background(), "")
	require.NoError(t, err)
	missing := testutil.UniqueName(t, "nothing") + ":latest"
	_, err = images.Push(context.Background(), c, missing, "berth/web", nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), missing)
	assert.Contains(t, err.Error(), "berth/web")
	assert.NotContains(t, err.Error(), "\n")
	t.Log(err)
}
