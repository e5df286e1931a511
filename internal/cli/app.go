package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"strings"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/berth-dev/berth/internal/api"
)

// defaultSpecFile is the spec a verb reads when -f is not given.
const defaultSpecFile = "berth.yaml"

// addFileFlag adds -f/--file to a verb. Verbs where -f means --follow (logs,
// events) get the long form only.
func addFileFlag(cmd *cobra.Command, p *string, shorthand bool) {
	usage := "the spec file whose app the verb acts on"
	if cmd.Name() == "deploy" {
		usage = "the spec file to deploy"
	}
	if shorthand {
		cmd.Flags().StringVarP(p, "file", "f", defaultSpecFile, usage)
		return
	}
	cmd.Flags().StringVar(p, "file", defaultSpecFile, usage)
}

// appLine finds a top-level "app:" line in a spec too broken to parse.
var appLine = regexp.MustCompile(`(?m)^app:[ \t]*["']?([^"'#\s]+)["']?[ \t]*(?:#.*)?$`)

// appInFile returns the app named in the spec at path, "" when it names
// none. It reads only the app name: a spec that is otherwise invalid still
// tells which app a verb is about (the daemon validates specs on deploy).
func appInFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var doc struct {
		App string `yaml:"app"`
	}
	if err := yaml.Unmarshal(b, &doc); err == nil && doc.App != "" {
		return doc.App, nil
	}
	if m := appLine.FindSubmatch(b); m != nil {
		return string(m[1]), nil
	}
	return "", nil
}

// serviceApp finds the app of a verb that names a SERVICE (README, Using berth):
// --app, else the spec file's app (./berth.yaml or -f FILE), else the only
// app the daemon has. An explicit --app wins over the spec found in the
// working directory, as a flag beats a default.
func (c *cli) serviceApp(ctx context.Context, cmd *cobra.Command, cl interface {
	Apps(context.Context) ([]api.AppSummary, error)
}, file string) (string, error) {
	explicit := cmd.Flags().Changed("file")
	if c.app != "" {
		if explicit {
			if name, err := appInFile(file); err == nil && name != "" && name != c.app {
				return "", invalidf("--app %s conflicts with app %s in %s: pass one of them", c.app, name, file)
			}
		}
		return c.app, nil
	}
	name, err := appInFile(file)
	switch {
	case err == nil && name != "":
		return name, nil
	case err == nil && explicit:
		return "", invalidf("%s has no app: line: add one or pass --app APP", file)
	case errors.Is(err, fs.ErrNotExist) && explicit:
		return "", invalidf("cannot read %s: no such file (check -f FILE)", file)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("read %s: %w", file, err)
	}
	apps, err := cl.Apps(ctx)
	if err != nil {
		return "", err
	}
	switch len(apps) {
	case 0:
		return "", invalidf(`no apps deployed yet: run "berth deploy" in the app's directory`)
	case 1:
		return apps[0].Name, nil
	}
	names := make([]string, len(apps))
	for i, a := range apps {
		names[i] = a.Name
	}
	return "", invalidf("several apps (%s): pass --app", strings.Join(names, ", "))
}

// specApp finds the app of a verb that acts on a whole app and must not
// guess (destroy): --app, else the spec file's app.
func (c *cli) specApp(cmd *cobra.Command, file string) (string, error) {
	if c.app != "" {
		return c.app, nil
	}
	name, err := appInFile(file)
	switch {
	case err == nil && name != "":
		return name, nil
	case err == nil:
		return "", invalidf("%s has no app: line: pass --app APP", file)
	case errors.Is(err, fs.ErrNotExist):
		if cmd.Flags().Changed("file") {
			return "", invalidf("cannot read %s: no such file (check -f FILE)", file)
		}
		return "", invalidf("no %s here: pass --app APP (or -f FILE)", file)
	}
	return "", fmt.Errorf("read %s: %w", file, err)
}

// clientAndApp connects to the daemon and resolves the app a verb naming a
// SERVICE acts on (see serviceApp).
func (c *cli) clientAndApp(cmd *cobra.Command, file string) (backend, string, error) {
	cl, err := c.backend(cmd)
	if err != nil {
		return nil, "", err
	}
	app, err := c.serviceApp(cmd.Context(), cmd, cl, file)
	if err != nil {
		return nil, "", err
	}
	return cl, app, nil
}
