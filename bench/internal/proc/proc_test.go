package proc

import "testing"

func TestParseCPUSeconds(t *testing.T) {
	for _, c := range []struct {
		name, stat string
		want       float64
		err        bool
	}{
		{"plain", "42 (exec-proxy) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 12 0", 3, false},
		{"spaces and parentheses in the name", "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 100 100 0 0", 2, false},
		{"cut short", "7 (x) R 1 7", 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ts, err := ParseStat([]byte(c.stat))
			got := ts.Own
			if (err != nil) != c.err || got != c.want {
				t.Errorf("ParseStat = %v, %v; want %v (error %v)", got, err, c.want, c.err)
			}
		})
	}
}

func TestParseOpenFilesLimit(t *testing.T) {
	const head = "Limit                     Soft Limit           Hard Limit           Units     \n"
	for _, c := range []struct {
		name, limits string
		want         int64
		err          bool
	}{
		{"number", head + "Max processes             unlimited            unlimited            processes \nMax open files            20000                20000                files     \n", 20000, false},
		{"unlimited", head + "Max open files            unlimited            unlimited            files     \n", -1, false},
		{"missing", head, 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseOpenFilesLimit(c.limits)
			if (err != nil) != c.err || got != c.want {
				t.Errorf("parseOpenFilesLimit = %v, %v; want %v (error %v)", got, err, c.want, c.err)
			}
		})
	}
}

func TestParseMachineCPU(t *testing.T) {
	// user nice system idle iowait irq softirq steal: idle and iowait are not busy.
	busy, total := ParseMachine([]byte("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3\n"))
	if busy != 1.5 || total != 10 {
		t.Errorf("ParseMachine = %v, %v; want 1.5, 10", busy, total)
	}
}
