package stats

import (
	"reflect"
	"testing"
)

func TestTurned(t *testing.T) {
	paths := []string{"a", "b", "c"}
	for _, c := range []struct {
		round int
		want  []string
	}{{0, []string{"a", "b", "c"}}, {1, []string{"b", "c", "a"}}, {2, []string{"c", "a", "b"}}, {4, []string{"b", "c", "a"}}} {
		if got := Turned(paths, c.round); !reflect.DeepEqual(got, c.want) {
			t.Errorf("round %d: %v, want %v", c.round, got, c.want)
		}
	}
	if !reflect.DeepEqual(paths, []string{"a", "b", "c"}) {
		t.Errorf("Turned changed its argument: %v", paths)
	}
}
