// Package logbuf is a log sink for tests: a buffer that the code under test
// may write to from its own goroutines while the test reads it.
package logbuf

import (
	"strings"
	"sync"
)

// Buffer collects what is written to it. Its methods are safe for
// concurrent use; the zero value is ready.
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

// Write appends p.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
