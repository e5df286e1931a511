package controlplane

import (
	"fmt"
	"net/http"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/controlplane/tasks"
)

// handleExec runs a command inside a running instance of a service, as an
// attach session: `berth exec`. Nothing has to be redeployed to allow it.
func (d *Daemon) handleExec(w http.ResponseWriter, r *http.Request) {
	app, svc := r.PathValue("app"), r.PathValue("svc")
	var req api.ExecRequest
	if err := decode(r, &req); err != nil {
		fail(w, err)
		return
	}
	if len(req.Command) == 0 || req.Command[0] == "" {
		fail(w, fmt.Errorf("%w: empty command: put it after --, e.g. \"berth exec %s -- sh\"", ErrInvalid, svc))
		return
	}
	if err := tasks.CheckArgs(req.Command); err != nil {
		fail(w, err)
		return
	}
	target, err := d.fleet.ExecTarget(r.Context(), app, svc, req)
	if err != nil {
		fail(w, err)
		return
	}
	if !isUpgrade(r) {
		fail(w, fmt.Errorf("%w: exec needs the attach protocol (Upgrade: berth-attach); use \"berth exec\"", ErrInvalid))
		return
	}
	ex, err := d.tasks.Exec(app, svc, target, req.Command, req.TTY)
	if err != nil {
		fail(w, err)
		return
	}
	defer ex.Close()
	conn, err := upgrade(w)
	if err != nil {
		d.log.Warn("exec session", "app", app, "service", svc, "err", err)
		return
	}
	defer conn.Close()
	ex.Serve(conn)
}
