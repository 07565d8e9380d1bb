package authztest

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer that goroutines may share: a log or audit sink a
// test reads while the code under test writes from its own goroutines.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
