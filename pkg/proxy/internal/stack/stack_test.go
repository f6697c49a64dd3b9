package stack

import (
	"testing"

	"github.com/exec-proxy/exec-proxy/pkg/proxy/internal/leaktest"
)

func TestFresh(t *testing.T) {
	leaktest.Check(t)
	ran := false
	Fresh(func() { ran = true })
	if !ran {
		t.Fatal("f did not run")
	}
	defer func() {
		if r := recover(); r != "boom" {
			t.Errorf("recovered %v, want the panic of f", r)
		}
	}()
	Fresh(func() { panic("boom") })
	t.Error("Fresh returned after f panicked")
}
