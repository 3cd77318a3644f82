package activities

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestMemo: concurrent callers share one call; a success is kept, a failure
// is not.
func TestMemo(t *testing.T) {
	var m memo
	var calls atomic.Int32
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := m.do("k", func() (any, error) { calls.Add(1); <-release; return 42, nil })
			assert.NoError(t, err)
			assert.Equal(t, 42, v)
		}()
	}
	for calls.Load() == 0 {
	}
	close(release)
	wg.Wait()
	_, _ = m.do("k", func() (any, error) { calls.Add(1); return 0, nil })
	assert.Equal(t, int32(1), calls.Load())

	boom := errors.New("boom")
	_, err := m.do("f", func() (any, error) { return nil, boom })
	assert.ErrorIs(t, err, boom)
	v, err := m.do("f", func() (any, error) { return "ok", nil })
	assert.NoError(t, err)
	assert.Equal(t, "ok", v)
}
