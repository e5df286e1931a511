package cdn

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	acmtypes "github.com/aws/aws-sdk-go-v2/service/acm/types"
)

// Certificate statuses berth acts on (ACM's).
const (
	CertIssued  = "ISSUED"
	CertPending = "PENDING_VALIDATION"
)

// Certificate is the ACM certificate (us-east-1) covering an entrypoint's
// hosts.
type Certificate struct {
	ARN    string
	Status string
	// Requested is set when berth requested it now.
	Requested bool
	// Records are the DNS records that validate it, to create at the
	// hosts' DNS provider while it is pending.
	Records []DNSRecord
}

// DNSRecord is one DNS validation record.
type DNSRecord struct {
	Name, Type, Value string
}

// covers reports whether a certificate name (maybe *.example.com) covers
// host.
func covers(name, host string) bool {
	if name == host {
		return true
	}
	if rest, ok := strings.CutPrefix(name, "*."); ok {
		_, parent, found := strings.Cut(host, ".")
		return found && parent == rest
	}
	return false
}

// Certificate finds an ISSUED certificate covering every host, else one
// pending validation, else requests one (DNS validation), and returns it
// with its validation records while it is not issued. Aliases are set on a
// distribution only once it is issued.
func (m *Manager) Certificate(ctx context.Context, hosts []string) (*Certificate, error) {
	var pending *Certificate
	p := acm.NewListCertificatesPaginator(m.c.ACM, &acm.ListCertificatesInput{
		CertificateStatuses: []acmtypes.CertificateStatus{acmtypes.CertificateStatusIssued, acmtypes.CertificateStatusPendingValidation},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list ACM certificates in us-east-1: %w", err)
		}
		for _, s := range page.CertificateSummaryList {
			c, names, err := m.describeCert(ctx, aws.ToString(s.CertificateArn))
			if err != nil {
				return nil, err
			}
			if !slices.ContainsFunc(hosts, func(h string) bool { return !slices.ContainsFunc(names, func(n string) bool { return covers(n, h) }) }) {
				switch {
				case c.Status == CertIssued:
					return c, nil
				case c.Status == CertPending && pending == nil:
					pending = c
				}
			}
		}
	}
	if pending != nil {
		return pending, nil
	}
	sum := sha256.Sum256([]byte(strings.Join(sorted(hosts), ",")))
	out, err := m.c.ACM.RequestCertificate(ctx, &acm.RequestCertificateInput{
		DomainName: aws.String(hosts[0]), SubjectAlternativeNames: hosts, ValidationMethod: acmtypes.ValidationMethodDns,
		IdempotencyToken: aws.String("berth" + hex.EncodeToString(sum[:])[:27]),
		Tags:             []acmtypes.Tag{{Key: aws.String(TagApp), Value: aws.String(m.app)}, {Key: aws.String(TagEnv), Value: aws.String(m.env)}},
	})
	if err != nil {
		return nil, fmt.Errorf("request an ACM certificate for %s: %w", strings.Join(hosts, ", "), err)
	}
	arn := aws.ToString(out.CertificateArn)
	m.progressf("certificate %s requested for %s", arn, strings.Join(hosts, ", "))
	// ACM fills in the validation records a few seconds after the request.
	for i := 0; ; i++ {
		c, _, err := m.describeCert(ctx, arn)
		if err != nil {
			return nil, err
		}
		c.Requested = true
		if len(c.Records) > 0 || c.Status == CertIssued || i >= 10 {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(min(m.opts.PollInterval, 2*time.Second)):
		}
	}
}

func (m *Manager) describeCert(ctx context.Context, arn string) (*Certificate, []string, error) {
	out, err := m.c.ACM.DescribeCertificate(ctx, &acm.DescribeCertificateInput{CertificateArn: aws.String(arn)})
	if err != nil {
		return nil, nil, fmt.Errorf("read ACM certificate %s: %w", arn, err)
	}
	d := out.Certificate
	c := &Certificate{ARN: arn, Status: string(d.Status)}
	names := append([]string{aws.ToString(d.DomainName)}, d.SubjectAlternativeNames...)
	seen := map[string]bool{}
	for _, o := range d.DomainValidationOptions {
		r := o.ResourceRecord
		if r == nil || seen[aws.ToString(r.Name)] {
			continue
		}
		seen[aws.ToString(r.Name)] = true
		c.Records = append(c.Records, DNSRecord{Name: aws.ToString(r.Name), Type: string(r.Type), Value: aws.ToString(r.Value)})
	}
	if c.Status == CertIssued {
		c.Records = nil
	}
	return c, names, nil
}
