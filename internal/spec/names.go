package spec

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// The shapes of names and references a spec may hold. Each check returns ""
// when the value is fine, else the message shown after the field name, so
// the decoder (which knows the line) and Validate (which may not) say the
// same thing.

// nameRE is the rule for app, service, sidecar and task names: they become
// DNS labels (web.shop.localhost), container names and network aliases, so
// they are lowercase, short, and neither start nor end with '-'.
var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)

const nameRule = "use 1-40 characters of a-z, 0-9 and '-', starting and ending with a letter or digit"

// checkName checks an app, service, sidecar or task name; kind says which,
// for the message.
func checkName(kind, name string) string {
	if nameRE.MatchString(name) {
		return ""
	}
	return fmt.Sprintf("invalid %s name %q: %s", kind, name, nameRule)
}

// envNameRE is the POSIX shell rule; anything else cannot be read back with
// $NAME inside the container.
var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// checkEnvName checks an environment variable (or secret, or build arg) name.
func checkEnvName(name string) string {
	if envNameRE.MatchString(name) {
		return ""
	}
	return fmt.Sprintf("invalid variable name %q: use letters, digits and '_', not starting with a digit", name)
}

// Image references, after github.com/distribution/reference: an optional
// registry host[:port], slash-separated lowercase path components, an
// optional tag and an optional digest. Written out here rather than imported
// because it is a few lines and the module pulls in more than it gives.
var (
	imageRE = regexp.MustCompile(`^` +
		`(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?/)?` + // registry
		`[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*` + // repository
		`(?::[\w][\w.-]{0,127})?` + // tag
		`(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?` + // digest
		`$`)
)

// maxImageLen bounds a reference; Docker's limit on the repository name is
// 255 and nothing legitimate comes close to this.
const maxImageLen = 512

// checkImage checks the shape of an image reference: the engine resolves it,
// but a reference Docker would refuse is better caught at the line it is on.
func checkImage(ref string) string {
	const hint = "use NAME[:TAG][@DIGEST], e.g. shop-web:1.4 or registry.example.com/shop/web:1.4"
	switch {
	case ref == "":
		return "must not be empty; " + hint
	case strings.ContainsFunc(ref, isSpace):
		return fmt.Sprintf("invalid image reference %q: must not contain spaces", ref)
	case len(ref) > maxImageLen:
		return "invalid image reference: too long"
	case imageRE.MatchString(ref):
		return ""
	}
	if repo := imageRepo(ref); repo != strings.ToLower(repo) {
		return fmt.Sprintf("invalid image reference %q: the repository name %q must be lowercase", ref, repo)
	}
	return fmt.Sprintf("invalid image reference %q: %s", ref, hint)
}

// imageRepo returns the repository part of ref (no registry, tag or digest),
// splitting the registry off the way Docker does: the first component is a
// registry when it has a '.' or ':', is "localhost", or has uppercase.
func imageRepo(ref string) string {
	name, _, _ := strings.Cut(ref, "@")
	if first, rest, ok := strings.Cut(name, "/"); ok &&
		(strings.ContainsAny(first, ".:") || first == "localhost" || first != strings.ToLower(first)) {
		name = rest
	}
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name = name[:i]
	}
	return name
}

func isSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f'
}

// Platforms berth can ask the engine for. The list is closed so that a typo
// (linux/amd46, linux/aarch64) fails here instead of as a pull or build error
// halfway through a deploy.
var (
	platformOS       = []string{"linux", "windows"}
	platformArch     = []string{"amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64", "mips64le", "loong64"}
	platformVariants = map[string][]string{
		"arm":   {"v5", "v6", "v7", "v8"},
		"arm64": {"v8", "v8.0", "v8.1", "v8.2", "v8.3", "v8.4", "v8.5", "v8.6", "v8.7", "v8.8", "v8.9", "v9", "v9.0", "v9.1", "v9.2", "v9.3", "v9.4", "v9.5"},
		"amd64": {"v1", "v2", "v3", "v4"},
	}
)

// checkPlatform checks an OCI platform "os/arch[/variant]".
func checkPlatform(p string) string {
	const hint = "use os/arch[/variant], e.g. linux/amd64, linux/arm64 or linux/arm/v7"
	parts := strings.Split(p, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return fmt.Sprintf("invalid platform %q: %s", p, hint)
	}
	if !slices.Contains(platformOS, parts[0]) {
		return fmt.Sprintf("unknown os %q in platform %q: use %s", parts[0], p, strings.Join(platformOS, " or "))
	}
	if !slices.Contains(platformArch, parts[1]) {
		return fmt.Sprintf("unknown architecture %q in platform %q: use one of %s", parts[1], p, strings.Join(platformArch, ", "))
	}
	if len(parts) == 3 && !slices.Contains(platformVariants[parts[1]], parts[2]) {
		if len(platformVariants[parts[1]]) == 0 {
			return fmt.Sprintf("invalid platform %q: %s has no variants", p, parts[1])
		}
		return fmt.Sprintf("unknown variant %q in platform %q: use one of %s", parts[2], p, strings.Join(platformVariants[parts[1]], ", "))
	}
	return ""
}

// domainLabelRE is one lowercase DNS label (RFC 1123).
var domainLabelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// checkDomain checks a custom domain: a lowercase DNS name of at least two
// labels. Wildcards are refused for now because the edge matches hosts
// exactly.
func checkDomain(d string) string {
	switch {
	case d == "":
		return "must not be empty"
	case strings.HasPrefix(d, "*"):
		return fmt.Sprintf("wildcard domain %q is not supported; list each host name", d)
	case strings.Contains(d, "://") || strings.ContainsAny(d, "/:"):
		return fmt.Sprintf("invalid domain %q: give a host name only, without scheme, port or path, e.g. shop.example.com", d)
	case d != strings.ToLower(d):
		return fmt.Sprintf("invalid domain %q: must be lowercase", d)
	case len(d) > 253:
		return fmt.Sprintf("invalid domain %q: longer than 253 characters", d)
	}
	labels := strings.Split(d, ".")
	if len(labels) < 2 {
		return fmt.Sprintf("invalid domain %q: needs at least two labels, e.g. shop.example.com", d)
	}
	for _, l := range labels {
		if !domainLabelRE.MatchString(l) {
			return fmt.Sprintf("invalid domain %q: each label must be 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-'", d)
		}
	}
	return ""
}

// checkPath checks a URL path: a route prefix, or (query allowed) the path a
// health check requests.
func checkPath(p string, query bool) string {
	switch {
	case !strings.HasPrefix(p, "/"):
		return fmt.Sprintf("invalid path %q: must start with '/'", p)
	case strings.ContainsFunc(p, isSpace):
		return fmt.Sprintf("invalid path %q: must not contain spaces", p)
	case strings.Contains(p, "#"):
		return fmt.Sprintf("invalid path %q: must not contain '#'", p)
	case !query && strings.Contains(p, "?"):
		return fmt.Sprintf("invalid path %q: a route matches a path prefix, without '?'", p)
	}
	return ""
}
