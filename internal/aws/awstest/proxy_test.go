package awstest_test

import (
	"context"
	"net/http"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/aws/awstest"
	"github.com/berth-dev/berth/internal/aws/clients"
	"github.com/berth-dev/berth/internal/testutil"
)

func TestMain(m *testing.M) {
	code := m.Run()
	awstest.Stop()
	os.Exit(code)
}

// TestProxyRegistry: through the proxy, ECR names the loopback registry
// (which answers the registry API); without one, moto's answer stands.
func TestProxyRegistry(t *testing.T) {
	ctx := context.Background()
	p := awstest.UseProxy(t)
	c, err := clients.Load(ctx, "")
	require.NoError(t, err)

	tok, err := c.ECR.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	require.NoError(t, err)
	require.Len(t, tok.AuthorizationData, 1)
	assert.Equal(t, "http://"+p.Registry(), aws.ToString(tok.AuthorizationData[0].ProxyEndpoint))
	resp, err := http.Get("http://" + p.Registry() + "/v2/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	repo := testutil.UniqueName(t, "repo")
	created, err := c.ECR.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String(repo)})
	require.NoError(t, err)
	assert.Equal(t, p.Registry()+"/"+repo, aws.ToString(created.Repository.RepositoryUri))

	plain := awstest.StartProxy(t, awstest.MotoEndpoint(t), "")
	awstest.UseEndpoint(t, plain.URL)
	c, err = clients.Load(ctx, "")
	require.NoError(t, err)
	tok, err = c.ECR.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	require.NoError(t, err)
	assert.Equal(t, "https://123456789012.dkr.ecr."+awstest.Region+".amazonaws.com", aws.ToString(tok.AuthorizationData[0].ProxyEndpoint))
}

// TestProxyHooks: a hook can change moto's answer, a service-wide hook
// sees the calls no exact one takes, and the proxy counts and lists calls.
func TestProxyHooks(t *testing.T) {
	ctx := context.Background()
	p := awstest.StartProxy(t, awstest.MotoEndpoint(t), "")
	awstest.UseEndpoint(t, p.URL)
	c, err := clients.Load(ctx, "")
	require.NoError(t, err)
	cluster := testutil.UniqueName(t, "cluster")
	_, err = c.ECS.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(cluster)})
	require.NoError(t, err)

	p.Handle("ecs:DescribeClusters", func(call *awstest.Call) *awstest.Response {
		resp, err := call.Forward()
		if err != nil {
			return call.Error(http.StatusInternalServerError, "ProxyError", err.Error())
		}
		v, err := resp.JSON()
		if err != nil {
			return call.Error(http.StatusInternalServerError, "ProxyError", err.Error())
		}
		for _, cl := range v["clusters"].([]any) {
			cl.(map[string]any)["runningTasksCount"] = 7
		}
		_ = resp.SetJSON(v)
		return resp
	})
	p.Handle("ecs:*", awstest.Fail(http.StatusBadRequest, "AccessDeniedException", "no"))

	out, err := c.ECS.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{cluster}})
	require.NoError(t, err)
	require.Len(t, out.Clusters, 1)
	assert.Equal(t, cluster, aws.ToString(out.Clusters[0].ClusterName), "moto's answer")
	assert.EqualValues(t, 7, out.Clusters[0].RunningTasksCount, "the hook's change")

	_, err = c.ECS.ListClusters(ctx, &ecs.ListClustersInput{})
	require.ErrorContains(t, err, "AccessDeniedException")

	p.Handle("ecs:*", nil)
	_, err = c.ECS.ListClusters(ctx, &ecs.ListClustersInput{})
	require.NoError(t, err)

	assert.Equal(t, 2, p.Count("ecs:ListClusters"))
	assert.Equal(t, []string{"ecs:CreateCluster", "ecs:DescribeClusters", "ecs:ListClusters", "ecs:ListClusters"}, p.Calls())
}
