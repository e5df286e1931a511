package controlplane

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/berth-dev/berth/internal/api"
)

// edgeRoutes adds the edge's API (api/edge.go), answered by the
// entrypoints (internal/controlplane/traffic), and /metrics to mux.
func (d *Daemon) edgeRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/edge", d.handleEdgeList)
	mux.HandleFunc("GET /v1/edge/{name}", d.handleEdgeShow)
	mux.HandleFunc("POST /v1/edge/{name}/switch", d.handleEdgeSwitch)
	mux.HandleFunc("POST /v1/edge/{name}/shift", d.handleEdgeShift)
	mux.HandleFunc("POST /v1/edge/{name}/maintenance", d.handleEdgeMaintenance)
	mux.HandleFunc("POST /v1/edge/{name}/invalidate", d.handleEdgeInvalidate)
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.edgex.registry, promhttp.HandlerOpts{ErrorLog: nil}))
}

func (d *Daemon) handleEdgeList(w http.ResponseWriter, r *http.Request) {
	eps, err := d.entrypoints.List(r.Context())
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, eps)
}

func (d *Daemon) handleEdgeShow(w http.ResponseWriter, r *http.Request) {
	ep, err := d.entrypoints.Show(r.Context(), r.PathValue("name"))
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ep)
}

func (d *Daemon) handleEdgeSwitch(w http.ResponseWriter, r *http.Request) {
	var req api.SwitchRequest
	if err := decode(r, &req); err != nil {
		fail(w, err)
		return
	}
	ep, err := d.entrypoints.Switch(r.Context(), r.PathValue("name"), req)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ep)
}

func (d *Daemon) handleEdgeShift(w http.ResponseWriter, r *http.Request) {
	var req api.ShiftRequest
	if err := decode(r, &req); err != nil {
		fail(w, err)
		return
	}
	ep, err := d.entrypoints.Shift(r.Context(), r.PathValue("name"), req)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ep)
}

func (d *Daemon) handleEdgeMaintenance(w http.ResponseWriter, r *http.Request) {
	var req api.MaintenanceRequest
	if err := decode(r, &req); err != nil {
		fail(w, err)
		return
	}
	ep, err := d.entrypoints.Maintenance(r.Context(), r.PathValue("name"), req.On)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ep)
}

func (d *Daemon) handleEdgeInvalidate(w http.ResponseWriter, r *http.Request) {
	var req api.InvalidateRequest
	if err := decode(r, &req); err != nil {
		fail(w, err)
		return
	}
	res, err := d.entrypoints.Invalidate(r.Context(), r.PathValue("name"), req.Pattern)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
