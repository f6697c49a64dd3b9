package keystroke

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeKubectl stands for kubectl and the container: it logs its arguments and runs what follows
// "--" here, on a terminal back in its normal mode (echoing, a line at a time) for -it.
const fakeKubectl = `#!/bin/sh
echo "$*" >>"$(dirname "$0")/args.log"
tty=
while [ "$1" != "--" ]; do [ "$1" = "-it" ] && tty=1; shift; done
shift
[ -n "$tty" ] && stty sane
exec "$@"
`

// Run measures every case each round with the stock kubectl's arguments, and pairs them.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("48 sessions and 24 downloads of 64 MiB or more")
	}
	limitsUsed = testLimits
	defer func() { limitsUsed = defaultLimits }()
	dir := t.TempDir()
	for _, v := range []string{"1.28", "1.33"} {
		if err := os.WriteFile(filepath.Join(dir, "kubectl."+v), []byte(fakeKubectl), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	res, err := Run(context.Background(), Options{Cluster: "/c", KubectlDir: dir, Echoes: 3, Rounds: 2, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Cases) != 16 || len(res.Comparisons) != 8 {
		t.Fatalf("%d cases, %d comparisons; want 16 and 8", len(res.Cases), len(res.Comparisons))
	}
	for _, c := range res.Cases {
		wantBulk := map[string]int{"idle": 0, "loaded": 2}[c.Load]
		if len(c.P50Ms) != 2 || len(c.P99Ms) != 2 || len(c.BulkMiBps) != wantBulk {
			t.Errorf("%+v: want 2 rounds (the warm-up left out), bulk rates only when loaded", c)
		}
	}
	log, err := os.ReadFile(filepath.Join(dir, "args.log"))
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(log)), "\n") {
		counts[line]++
	}
	// 3 rounds with the warm-up; a loaded case's session and download each.
	for _, want := range []struct {
		args string
		n    int
	}{
		{"--kubeconfig /c/kubeconfig/admin.kubeconfig -n demo exec -it demo -c main -- cat", 2 * 2 * 3},
		{"--kubeconfig /c/kubeconfig/admin-direct.kubeconfig -n demo exec -i demo -c main -- cat", 2 * 2 * 3},
	} {
		if counts[want.args] != want.n {
			t.Errorf("%q run %d times, want %d; all:\n%s", want.args, counts[want.args], want.n, log)
		}
	}
	downloads := 0
	for args, n := range counts {
		if strings.Contains(args, "exec -i demo -c main -- sh -c stop=") {
			downloads += n
		}
	}
	if downloads != 8*3 {
		t.Errorf("%d downloads, want 24 (8 loaded cases, 3 rounds)", downloads)
	}
}
