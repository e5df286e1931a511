// Package awsdaemon lets berth server reach an app's AWS environments, so
// the web console shows and steers them when one is picked: status,
// revisions, events, rollback, scale, pause and resume, carried out by
// internal/aws/awsenv in the daemon's process with the credentials of the
// daemon's own environment (the SDK's standard chain).
//
// It implements controlplane.Environments, which keeps the control plane
// free of the AWS SDK (and of awsenv's image-push code); berth server
// (internal/cli) wires it in. It owns the translation of AWS errors into
// the API's codes and one-line messages, and nothing of awsenv's verbs.
package awsdaemon
