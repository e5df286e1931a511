package images

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/berth-dev/berth/internal/aws/clients"
)

// Push pushes localImage (a reference or an image ID on the local Docker
// Engine) to the ECR repository named repository, creating the repository
// with tags when it does not exist, and returns the pushed image pinned by
// digest: "HOST/REPOSITORY@sha256:DIGEST". Pushing an image the repository
// already holds uploads no layer and returns the same reference. Errors
// name the image and the repository.
func Push(ctx context.Context, c *clients.Clients, localImage, repository string, tags map[string]string) (ref string, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("push image %s to ECR repository %s: %w", localImage, repository, err)
		}
	}()
	docker, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return "", fmt.Errorf("docker client: %w", err)
	}
	defer docker.Close()
	inspect, err := docker.ImageInspect(ctx, localImage)
	if cerrdefs.IsNotFound(err) {
		return "", errors.New("no such image on the local Docker Engine (build it first)")
	}
	if err != nil {
		return "", fmt.Errorf("inspect the local image: %w", err)
	}

	if err := EnsureRepository(ctx, c.ECR, repository, tags); err != nil {
		return "", err
	}
	reg, err := Login(ctx, c.ECR)
	if err != nil {
		return "", err
	}

	// docker save by ID: by name it would save every tag of the
	// repository.
	path, err := save(ctx, docker, inspect.ID)
	if err != nil {
		return "", err
	}
	defer os.Remove(path)
	img, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		return "", fmt.Errorf("read the saved image: %w", err)
	}
	digest, err := img.Digest()
	if err != nil {
		return "", fmt.Errorf("digest: %w", err)
	}
	target, err := name.NewDigest(reg.Host+"/"+repository+"@"+digest.String(), reg.nameOptions()...)
	if err != nil {
		return "", fmt.Errorf("reference: %w", err)
	}
	if err := remote.Write(target, img,
		remote.WithContext(ctx),
		remote.WithAuth(reg.Auth),
		remote.WithUserAgent("berth"),
	); err != nil {
		return "", err
	}
	return target.String(), nil
}

// EnsureRepository creates the ECR repository name with tags unless it
// exists already (an existing repository is left as it is).
func EnsureRepository(ctx context.Context, api *ecr.Client, repository string, tags map[string]string) error {
	in := &ecr.CreateRepositoryInput{
		RepositoryName:     aws.String(repository),
		ImageTagMutability: ecrtypes.ImageTagMutabilityMutable,
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		in.Tags = append(in.Tags, ecrtypes.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	_, err := api.CreateRepository(ctx, in)
	var exists *ecrtypes.RepositoryAlreadyExistsException
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("create the repository: %w", err)
	}
	return nil
}

// Registry is the account's ECR registry as GetAuthorizationToken names
// it: where to push, and with what credentials.
type Registry struct {
	// Host is the registry's host[:port], from proxyEndpoint.
	Host string
	// Insecure is true when proxyEndpoint is plain http (a local stand-in
	// for ECR; real ECR is always https).
	Insecure bool
	// Auth holds the token's user name (AWS) and password.
	Auth authn.Authenticator
}

func (r Registry) nameOptions() []name.Option {
	opts := []name.Option{name.StrictValidation}
	if r.Insecure {
		opts = append(opts, name.Insecure)
	}
	return opts
}

// Login asks ECR for the default registry's address and a token for it.
func Login(ctx context.Context, api *ecr.Client) (Registry, error) {
	out, err := api.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		return Registry{}, fmt.Errorf("ECR authorization token: %w", err)
	}
	if len(out.AuthorizationData) == 0 {
		return Registry{}, errors.New("ECR authorization token: ECR answered no authorization data")
	}
	data := out.AuthorizationData[0]
	endpoint := aws.ToString(data.ProxyEndpoint)
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return Registry{}, fmt.Errorf("ECR authorization token: proxyEndpoint %q is not a URL", endpoint)
	}
	token, err := base64.StdEncoding.DecodeString(aws.ToString(data.AuthorizationToken))
	if err != nil {
		return Registry{}, fmt.Errorf("ECR authorization token: not base64: %w", err)
	}
	user, pass, ok := strings.Cut(string(token), ":")
	if !ok {
		return Registry{}, errors.New("ECR authorization token: not USER:PASSWORD")
	}
	return Registry{
		Host:     u.Host,
		Insecure: u.Scheme == "http",
		Auth:     &authn.Basic{Username: user, Password: pass},
	}, nil
}

// save writes `docker save ID` to a temporary file and returns its path:
// go-containerregistry reads the archive more than once.
func save(ctx context.Context, docker *client.Client, id string) (string, error) {
	rc, err := docker.ImageSave(ctx, []string{id})
	if err != nil {
		return "", fmt.Errorf("docker save: %w", err)
	}
	defer rc.Close()
	f, err := os.CreateTemp("", "berth-push-*.tar")
	if err != nil {
		return "", fmt.Errorf("docker save: %w", err)
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", fmt.Errorf("docker save: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("docker save: %w", err)
	}
	return f.Name(), nil
}
