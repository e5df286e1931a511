// Package images pushes images built on the local Docker Engine to Amazon
// ECR, where Fargate pulls them from.
//
// One ECR repository per berth service, created (tagged) when missing. The
// registry's address and credentials come from ECR's
// GetAuthorizationToken, as `aws ecr get-login-password` uses them, and the
// image goes there with go-containerregistry: no docker login, no change to
// the user's Docker configuration. What Push returns is the image pinned by
// digest (HOST/REPO@sha256:...), which task definitions name, so a tag
// moved later never changes what a revision runs.
//
// It owns the ECR repositories' creation and image pushes, nothing else:
// it never deletes an image or a repository (destroy does), never tags
// images in the registry, and never writes the user's Docker
// configuration.
package images
