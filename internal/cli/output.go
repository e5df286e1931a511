package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/berth-dev/berth/internal/api"
)

// printJSON writes v as indented JSON: the --json output of verbs that
// answer with one document.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes aligned columns; call flush when done.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(header...)
	}
	return t
}

func (t *table) row(cells ...string) {
	// Trailing empty cells would leave trailing spaces.
	for len(cells) > 1 && cells[len(cells)-1] == "" {
		cells = cells[:len(cells)-1]
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() { _ = t.tw.Flush() }

// streamPrinter prints a stream's messages as they arrive: NDJSON with
// --json, else one line per phase, log line or event.
type streamPrinter struct {
	w    io.Writer
	json bool
	// logIndent prefixes log lines (deploy output is indented under its
	// phase).
	logIndent string
}

func (p *streamPrinter) print(m api.Message) {
	if p.json {
		b, _ := json.Marshal(m)
		fmt.Fprintf(p.w, "%s\n", b)
		return
	}
	switch m.Kind {
	case api.KindPhase:
		if m.Text == "" {
			fmt.Fprintf(p.w, "==> %s\n", m.Phase)
			return
		}
		fmt.Fprintf(p.w, "==> %-8s %s\n", m.Phase, m.Text)
	case api.KindLog:
		fmt.Fprintf(p.w, "%s%s\n", p.logIndent, m.Text)
	case api.KindEvent:
		if m.Event != nil {
			fmt.Fprintln(p.w, formatEvent(*m.Event))
		}
	case api.KindResult:
		// The verb prints the outcome; a failure goes through report.
	default:
		if m.Text != "" {
			fmt.Fprintln(p.w, m.Text)
		}
	}
}

// printDeployed lists each service a deploy or rollback put in place, with
// its URLs.
func printDeployed(w io.Writer, deployed []api.Deploy) {
	if len(deployed) == 0 {
		return
	}
	t := newTable(w)
	for _, d := range deployed {
		urls := strings.Join(d.URLs, " ")
		if urls == "" {
			urls = "(no HTTP port)"
		}
		t.row(d.Service, "revision "+strconv.Itoa(d.Revision), urls)
	}
	t.flush()
}

// formatEvent is one event on one line.
func formatEvent(e api.Event) string {
	where := e.App
	if e.Service != "" {
		where += "/" + e.Service
	}
	return fmt.Sprintf("%s  %s  %s: %s", e.Time.Local().Format(time.DateTime), where, e.Kind, e.Message)
}

// age is how long ago t was, compactly ("45s", "12m", "3h", "2d").
func age(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// orDash is s, or "-" for an empty table cell.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// revision is a revision number for a table, "-" before the first.
func revision(n int) string {
	if n <= 0 {
		return "-"
	}
	return strconv.Itoa(n)
}
