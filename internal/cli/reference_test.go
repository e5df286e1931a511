package cli

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
)

var updateReference = flag.Bool("update", false, "rewrite docs/cli.md from the command tree")

// referencePath is the user contract's command reference. Checks outside the
// repository call berth exactly as written there, so it is rendered from the
// command tree itself and this test fails when the two differ.
var referencePath = filepath.Join("..", "..", "docs", "cli.md")

func TestCLIReferenceIsCurrent(t *testing.T) {
	c := &cli{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard}
	got := renderReference(c.rootCmd())
	if *updateReference {
		require.NoError(t, os.WriteFile(referencePath, got, 0o644))
	}
	want, err := os.ReadFile(referencePath)
	require.NoError(t, err, "missing docs/cli.md; run go test ./internal/cli/ -run TestCLIReferenceIsCurrent -update")
	require.Equal(t, string(want), string(got),
		"docs/cli.md is out of date with the command tree; run go test ./internal/cli/ -run TestCLIReferenceIsCurrent -update")
}

// renderReference writes every verb, its usage, description and flags as
// markdown, in the order the help lists them.
func renderReference(root *cobra.Command) []byte {
	var b bytes.Buffer
	b.WriteString("# Command reference\n\n")
	b.WriteString("<!-- Rendered from the command tree by `go test ./internal/cli/ -run TestCLIReferenceIsCurrent -update`; do not edit by hand. -->\n\n")
	b.WriteString("Every verb exits 0 on success and non-zero with a one-line reason on failure.\n\n")
	b.WriteString("## Global flags\n\n")
	writeFlags(&b, root.PersistentFlags())
	var walk func(cmd *cobra.Command)
	walk = func(cmd *cobra.Command) {
		for _, sub := range cmd.Commands() {
			if sub.Hidden || sub.Name() == "help" || sub.Name() == "completion" {
				continue
			}
			fmt.Fprintf(&b, "## %s\n\n", sub.CommandPath())
			fmt.Fprintf(&b, "```\n%s\n```\n\n", sub.UseLine())
			desc := sub.Long
			if desc == "" {
				desc = sub.Short
			}
			b.WriteString(strings.TrimSpace(desc) + "\n\n")
			writeFlags(&b, sub.LocalNonPersistentFlags())
			walk(sub)
		}
	}
	walk(root)
	return bytes.TrimRight(b.Bytes(), "\n")
}

func writeFlags(b *bytes.Buffer, fs *pflag.FlagSet) {
	if !fs.HasAvailableFlags() {
		return
	}
	b.WriteString("| flag | default | meaning |\n|---|---|---|\n")
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden || f.Name == "help" {
			return
		}
		name := "`--" + f.Name + "`"
		if f.Shorthand != "" {
			name = "`-" + f.Shorthand + "`, " + name
		}
		def := f.DefValue
		switch def {
		case "", "[]", "false", "0", "0s":
			def = ""
		default:
			def = "`" + def + "`"
		}
		usage := strings.ReplaceAll(f.Usage, "|", `\|`)
		fmt.Fprintf(b, "| %s | %s | %s |\n", name, def, usage)
	})
	b.WriteString("\n")
}
