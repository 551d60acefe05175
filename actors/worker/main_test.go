package worker

import (
	"testing"

	"github.com/deer-runtime/deer/internal/leaktest"
)

// TestMain fails the package when goroutines outlive its tests (goleak).
func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }
