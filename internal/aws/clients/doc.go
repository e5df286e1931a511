// Package clients builds the AWS configuration berth's AWS engine uses and
// one client per service it calls.
//
// The configuration comes from the SDK's standard chain (environment
// variables, the shared config and credentials files with their profiles,
// SSO, container and instance roles), so AWS_ENDPOINT_URL and
// AWS_ENDPOINT_URL_<SERVICE> point berth at another endpoint (LocalStack,
// moto) exactly as they point the AWS CLI. Throttling and transient errors
// are retried with more attempts than the SDK's default: a deploy makes
// bursts of calls, and a throttled call is not a failure.
//
// It owns configuration and clients only: it makes no call of its own
// beyond STS's GetCallerIdentity (AccountID), and knows nothing of berth's
// resources or of the tests' stand-ins (moto, the proxy), which it reaches
// only through the standard chain.
package clients
