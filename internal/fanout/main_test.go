package fanout

import (
	"testing"

	"github.com/deer-runtime/deer/internal/leaktest"
)

// TestMain fails the package when goroutines outlive its tests (goleak): a
// pump that does not exit after done, or a reader left waiting.
func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }
