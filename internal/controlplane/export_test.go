package controlplane

// Tests read task schedules with seconds granularity (see cronSeconds), so
// a schedule can be seen to fire within a test.
func init() { cronSeconds = true }
