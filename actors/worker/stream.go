package worker

import (
	"io"
	"sync"
)

// streamBody runs onClose once when the receiver closes the stream: that
// returns the connection lease and frees the worker.
type streamBody struct {
	io.ReadCloser
	once    sync.Once
	onClose func()
}

func (s *streamBody) Close() error {
	err := s.ReadCloser.Close()
	s.once.Do(s.onClose)
	return err
}
