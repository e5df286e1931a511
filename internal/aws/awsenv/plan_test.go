package awsenv

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// berth plan lists what a deploy would make or change, beyond the ECS
// service and its rules: the scaling, the Cloud Map names, the schedules
// and the CloudFront distributions; it changes nothing.
func TestPlanListsEveryResourceKind(t *testing.T) {
	a := newAWSApp(t, strings.Replace(webYAML, "    instances: 2\n", "    scale: {min: 1, max: 4, concurrency: 10}\n", 1)+`tasks:
  report:
    service: web
    command: [/testapp, report]
    schedule: "0 3 * * *"
edge:
  www: {hosts: [www.APP.example.com], origin: web}
`)
	e := a.env(Options{})
	changes, err := e.Plan(context.Background(), a.sp, nil)
	require.NoError(t, err)
	var lines []string
	for _, c := range changes {
		lines = append(lines, c.String())
	}
	want := []string{
		"create  ECS cluster",
		"create  ECS service " + e.ecsServiceName("web", SlotA),
		"set     Application Auto Scaling of " + e.ecsServiceName("web", SlotA) + ": 1 to 4 tasks, tracking 600 requests per task per minute",
		"create  Cloud Map namespace " + e.namespaceName(),
		"switch  Cloud Map name web." + e.namespaceName(),
		"set     EventBridge Scheduler schedule " + taskScheduleName("report") + " in group " + e.scheduleGroup() + ": cron(0 3 * * ? *)",
		"create  CloudFront distribution of entrypoint www: default origin web",
	}
	for _, w := range want {
		found := false
		for _, l := range lines {
			found = found || strings.HasPrefix(l, w)
		}
		assert.True(t, found, "plan has no line %q:\n%v", w, lines)
	}
	st, err := e.Status(context.Background())
	require.NoError(t, err)
	for _, app := range st.Apps {
		for _, s := range app.Services {
			assert.Zero(t, s.Revision, "plan deployed %s", s.Name)
		}
	}
	assert.Zero(t, a.proxy.Count("ecs:CreateCluster"), "plan made a cluster")
}
