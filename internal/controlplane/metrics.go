package controlplane

// countAutoscale counts an autoscaler decision (metrics.go).
func (d *Daemon) countAutoscale(s *service, from, to int) {}
