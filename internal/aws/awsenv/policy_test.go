package awsenv

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The README's IAM policy grants every AWS API call berth's code makes:
// a call added without its permission fails here, not in a user's account.
func TestREADMEPolicyCoversEveryCall(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	start := strings.Index(readme, "```json\n")
	if start < 0 {
		t.Fatal("README has no ```json policy")
	}
	body := readme[start+len("```json\n"):]
	body = body[:strings.Index(body, "```")]
	var doc struct {
		Statement []struct {
			Action json.RawMessage
		}
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("README's policy is not JSON: %v", err)
	}
	granted := map[string]bool{}
	for _, st := range doc.Statement {
		var many []string
		if json.Unmarshal(st.Action, &many) != nil {
			var one string
			_ = json.Unmarshal(st.Action, &one)
			many = []string{one}
		}
		for _, a := range many {
			granted[a] = true
		}
	}
	prefix := map[string]string{
		"ECS": "ecs", "ECR": "ecr", "EC2": "ec2", "ELB": "elasticloadbalancing", "Logs": "logs",
		"SecretsManager": "secretsmanager", "DynamoDB": "dynamodb", "IAM": "iam", "STS": "sts",
		"AutoScaling": "application-autoscaling", "AppAutoScaling": "application-autoscaling", "ApplicationAutoScaling": "application-autoscaling",
		"Scheduler": "scheduler", "ServiceDiscovery": "servicediscovery",
		"CloudFront": "cloudfront", "ACM": "acm", "AppRunner": "apprunner", "CloudWatch": "cloudwatch",
	}
	call := regexp.MustCompile(`\.c\.(\w+)\.([A-Z]\w+)\(|New(\w+)Paginator\(\w+\.c\.(\w+)`)
	// Packages that keep one client in a field of their own.
	field := map[string]*regexp.Regexp{
		"cloudfront": regexp.MustCompile(`\.cf\.([A-Z]\w+)\(|cloudfront\.New(\w+)Paginator\(`),
		"apprunner":  regexp.MustCompile(`\.api\.([A-Z]\w+)\(|apprunner\.New(\w+)Paginator\(`),
	}
	root := filepath.Join("..")
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "awstest" {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for p, re := range field {
			if p == "apprunner" && !strings.Contains(filepath.ToSlash(path), "/apprunner/") {
				continue
			}
			for _, m := range re.FindAllStringSubmatch(string(src), -1) {
				if a := p + ":" + m[1] + m[2]; !granted[a] {
					t.Errorf("%s calls %s, which README.md's IAM policy does not grant", path, a)
				}
			}
		}
		for _, m := range call.FindAllStringSubmatch(string(src), -1) {
			svc, op := m[1], m[2]
			if m[3] != "" {
				svc, op = m[4], m[3]
			}
			p, ok := prefix[svc]
			if !ok {
				t.Errorf("%s calls %s.%s: a client this test does not know; add its IAM prefix to the table", path, svc, op)
				continue
			}
			if a := p + ":" + op; !granted[a] {
				t.Errorf("%s calls %s, which README.md's IAM policy does not grant", path, a)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
