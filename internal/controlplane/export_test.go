package controlplane

import "time"

// Tests read task schedules with seconds granularity (see cronSeconds), so
// a schedule can be seen to fire within a test.
func init() { cronSeconds = true }

// The console's graphs take a point every second in tests, so a test sees
// its traffic in them within seconds.
func init() { historyEvery = time.Second }
