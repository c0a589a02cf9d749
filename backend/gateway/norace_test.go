//go:build !race

package gateway

// raceEnabled reports whether the race detector is on; under it sync.Pool
// drops a share of what it is given, so pooled paths allocate.
const raceEnabled = false
