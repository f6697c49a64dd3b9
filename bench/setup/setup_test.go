package setup

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// fakeCluster records what the rounds do. A session's duration is the path's base plus, on the
// route, what the webhook configuration adds, plus the session's index within its case (so that
// the timed sessions' percentiles show that the untimed ones were left out).
type fakeCluster struct {
	log      []string
	webhook  bool
	events   int64
	sessions map[string]int // opened per case
	per      int            // sessions a measurement opens
	failOn   string
	offSends bool // the webhook receives while it should be off
}

var fakeBase = map[string]time.Duration{Direct: 10 * time.Millisecond, APIServer: 12 * time.Millisecond, RouteOn: 13 * time.Millisecond, RouteOff: 13 * time.Millisecond}

func (f *fakeCluster) hooks() hooks {
	return hooks{
		restart: func(_ context.Context, webhook bool) error {
			f.log = append(f.log, fmt.Sprintf("restart %v", webhook))
			f.webhook = webhook
			return nil
		},
		open: func(_ context.Context, path string) (time.Duration, error) {
			if path == f.failOn {
				return 0, errors.New("refused")
			}
			if (path == RouteOn) != f.webhook && (path == RouteOn || path == RouteOff) {
				return 0, fmt.Errorf("%s opened with the webhook %v", path, f.webhook)
			}
			i := f.sessions[path] % f.per
			if i == 0 {
				f.log = append(f.log, path)
			}
			f.sessions[path]++
			if path == RouteOn || f.offSends && path == RouteOff {
				f.events += 2
			}
			d := fakeBase[path]
			if path == RouteOn {
				d += time.Millisecond
			}
			if i < warmSessions {
				d += time.Second // untimed: must not show
			}
			return d + time.Duration(i-warmSessions)*time.Microsecond, nil
		},
		events:  func() int64 { return f.events },
		refused: func() int64 { return 0 },
	}
}

func TestRun(t *testing.T) {
	o := Options{Sessions: 100, Rounds: 3, Logf: func(string, ...any) {}}
	f := &fakeCluster{sessions: map[string]int{}, per: warmSessions + o.Sessions}
	res, err := run(context.Background(), o, f.hooks())
	if err != nil {
		t.Fatal(err)
	}
	// Which slot comes first alternates, so that a round's first slot keeps the last one's
	// configuration; the cases with the webhook on turn.
	want := []string{
		"restart true", Direct, APIServer, RouteOn, "restart false", RouteOff, // warm-up
		RouteOff, "restart true", APIServer, RouteOn, Direct,
		RouteOn, Direct, APIServer, "restart false", RouteOff,
		RouteOff, "restart true", Direct, APIServer, RouteOn,
	}
	if got := strings.Join(f.log, "; "); got != strings.Join(want, "; ") {
		t.Errorf("order:\n got %s\nwant %s", got, strings.Join(want, "; "))
	}
	for _, c := range res.Cases {
		base := float64(fakeBase[c.Path]) / float64(time.Millisecond)
		if c.Path == RouteOn {
			base++
		}
		// Nearest rank of 100: the 50th and 99th timed sessions, 49 and 98 µs above the base.
		if len(c.P50Ms) != o.Rounds || c.P50 != base+0.049 || c.P99 != base+0.098 {
			t.Errorf("%s: %d rounds, p50 %v, p99 %v; want %d, %v, %v", c.Path, len(c.P50Ms), c.P50, c.P99, o.Rounds, base+0.049, base+0.098)
		}
	}
	if w := res.Webhook; w.Events != int64(2*(o.Rounds+1)*(o.Sessions+warmSessions)) || w.EventsWhileOff != 0 || w.RouteSessions != (o.Rounds+1)*(o.Sessions+warmSessions) {
		t.Errorf("webhook: %+v", w)
	}
	if len(res.Comparisons) != 2*len(comparisons) {
		t.Errorf("%d comparisons, want %d", len(res.Comparisons), 2*len(comparisons))
	}
}

func TestRunFails(t *testing.T) {
	f := &fakeCluster{failOn: APIServer, sessions: map[string]int{}, per: warmSessions + 5}
	_, err := run(context.Background(), Options{Sessions: 5, Rounds: 2, Logf: func(string, ...any) {}}, f.hooks())
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("run = %v; want the session's error", err)
	}
}

// TestRunEventsWhileOff: events that reach the webhook while exec-proxy runs without it are told.
func TestRunEventsWhileOff(t *testing.T) {
	o := Options{Sessions: 5, Rounds: 2, Logf: func(string, ...any) {}}
	f := &fakeCluster{sessions: map[string]int{}, per: warmSessions + o.Sessions, offSends: true}
	res, err := run(context.Background(), o, f.hooks())
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(2 * (o.Rounds + 1) * f.per); res.Webhook.EventsWhileOff != want || res.Webhook.Events != 2*want {
		t.Errorf("webhook %+v; want %d events while off of %d", res.Webhook, want, 2*want)
	}
}
