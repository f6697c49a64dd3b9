package peers

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	testingclock "k8s.io/utils/clock/testing"
)

func TestCounts(t *testing.T) {
	type add struct {
		user, rule string
		n          int
	}
	cases := []struct {
		name string
		adds []add
		want Counts
	}{
		{"none", nil, Counts{}},
		{"by user and rule", []add{{"alice", "prod", 1}, {"alice", "prod", 1}, {"alice", "", 1}, {"bob", "dev", 1}}, Counts{
			Total: 4, Users: map[string]int{"alice": 3, "bob": 1}, Rules: map[string]int{"prod": 2, "dev": 1},
			RuleUsers: map[string]map[string]int{"prod": {"alice": 2}, "dev": {"bob": 1}}}},
		// Users and rules with no session left are not named to peers.
		{"counted out", []add{{"alice", "prod", 1}, {"bob", "prod", 1}, {"alice", "prod", -1}}, Counts{
			Total: 1, Users: map[string]int{"bob": 1}, Rules: map[string]int{"prod": 1}, RuleUsers: map[string]map[string]int{"prod": {"bob": 1}}}},
		{"all counted out", []add{{"alice", "prod", 1}, {"alice", "prod", -1}}, Counts{
			Users: map[string]int{}, Rules: map[string]int{}, RuleUsers: map[string]map[string]int{}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c Counts
			for _, a := range tc.adds {
				c.Add(a.user, a.rule, a.n)
			}
			if !reflect.DeepEqual(c, tc.want) {
				t.Errorf("got %+v, want %+v", c, tc.want)
			}
			var merged Counts
			merged.Merge(c)
			merged.Merge(c)
			for _, a := range tc.adds {
				if got, want := merged.Of(a.user, a.rule), c.Of(a.user, a.rule).Plus(c.Of(a.user, a.rule)); got != want {
					t.Errorf("merged twice: %s under %q: got %+v, want %+v", a.user, a.rule, got, want)
				}
			}
		})
	}
}

// fakePeer is another replica answering its counts as told.
type fakePeer struct {
	*httptest.Server
	mu     sync.Mutex
	answer func(w http.ResponseWriter)
	asked  chan struct{} // a send per asking, when not nil
}

func newFakePeer(t *testing.T, answer func(w http.ResponseWriter)) *fakePeer {
	f := &fakePeer{answer: answer}
	f.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != CountsPath || req.Header.Get(HeaderPeer) != "r1" {
			t.Errorf("asked %s as %q", req.URL.Path, req.Header.Get(HeaderPeer))
		}
		f.mu.Lock()
		answer, asked := f.answer, f.asked
		f.mu.Unlock()
		answer(w)
		if asked != nil {
			asked <- struct{}{}
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakePeer) set(answer func(w http.ResponseWriter)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answer = answer
}

func (f *fakePeer) host() string { return strings.TrimPrefix(f.URL, "https://") }

func answering(c Counts) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) { _ = json.NewEncoder(w).Encode(c) }
}

func failing(w http.ResponseWriter) { http.Error(w, "no", http.StatusInternalServerError) }

// overBound answers more than a peer reads.
func overBound(w http.ResponseWriter) {
	_, _ = w.Write([]byte(`{"total":1,"users":{"`))
	_, _ = w.Write([]byte(strings.Repeat("a", maxCounts)))
	_, _ = w.Write([]byte(`":1}}`))
}

var (
	r2Counts = Counts{Total: 3, Users: map[string]int{"alice": 2, "bob": 1}, Rules: map[string]int{"prod": 2},
		RuleUsers: map[string]map[string]int{"prod": {"alice": 2}}}
	r3Counts = Counts{Total: 2, Users: map[string]int{"alice": 1, "carol": 1}, Rules: map[string]int{"prod": 1},
		RuleUsers: map[string]map[string]int{"prod": {"carol": 1}}}
)

// Two rounds of asking r2 and r3: r3 answers both; r2 answers the first, then as the case says.
func TestTallyRefresh(t *testing.T) {
	cases := []struct {
		name     string
		failOpen bool
		first    func(http.ResponseWriter)
		then     func(http.ResponseWriter)
		gone     bool          // r2 is closed before the second round: nothing listens
		later    time.Duration // how much later the second round is, by the leases' clock
		counted  []Counts      // whose counts count after the second round
	}{
		{"summed", false, answering(r2Counts), answering(r2Counts), false, time.Second, []Counts{r2Counts, r3Counts}},
		{"fail-closed keeps a peer that fails as last heard", false, answering(r2Counts), failing, false, time.Second, []Counts{r2Counts, r3Counts}},
		{"fail-closed keeps a peer that is gone", false, answering(r2Counts), nil, true, time.Second, []Counts{r2Counts, r3Counts}},
		{"fail-open drops a peer that fails", true, answering(r2Counts), failing, false, time.Second, []Counts{r3Counts}},
		{"fail-open drops a peer that is gone", true, answering(r2Counts), nil, true, time.Second, []Counts{r3Counts}},
		{"fail-closed drops a peer whose lease expired", false, answering(r2Counts), failing, false, 31 * time.Second, []Counts{r3Counts}},
		{"an expired lease drops counts that are still answered", false, answering(r2Counts), answering(r2Counts), false, 31 * time.Second, []Counts{r3Counts}},
		{"fail-closed cannot keep what it never heard", false, failing, failing, false, time.Second, []Counts{r3Counts}},
		{"an answer over the bound is no counts", true, answering(r2Counts), overBound, false, time.Second, []Counts{r3Counts}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r2, r3 := newFakePeer(t, tc.first), newFakePeer(t, answering(r3Counts))
			start := time.Unix(1000, 0)
			now := start
			tally := &Tally{FailOpen: tc.failOpen, Clock: testingclock.NewFakeClock(start), Peers: &Peers{
				Self: "r1", Client: r2.Client(), Now: func() time.Time { return now },
				// r3 renewed its lease later than r2: it is current in both rounds.
				Leases: lister(t, replicaLease("r1", "127.0.0.1:1", start, true), replicaLease("r2", r2.host(), start, true),
					replicaLease("r3", r3.host(), start.Add(tc.later), true)),
			}}
			tally.refresh(context.Background())
			if tc.gone {
				r2.Close()
			} else {
				r2.set(tc.then)
			}
			now = now.Add(tc.later)
			tally.refresh(context.Background())
			for _, who := range []string{"alice", "bob", "carol", "dave"} {
				want := Held{Replicas: len(tc.counted)}
				for _, c := range tc.counted {
					h := c.Of(who, "prod")
					h.Replicas = 0
					want = want.Plus(h)
				}
				if got := tally.Of(who, "prod"); got != want {
					t.Errorf("%s: got %+v, want %+v", who, got, want)
				}
			}
		})
	}
}

// The counts name users: only exec-proxy's own identity is told them.
func TestTallyServe(t *testing.T) {
	client := fake.NewClientset()
	client.PrependReactor("create", "selfsubjectreviews", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, &authenticationv1.SelfSubjectReview{Status: authenticationv1.SelfSubjectReviewStatus{
			UserInfo: authenticationv1.UserInfo{Username: "system:exec-proxy"}}}, nil
	})
	local := r2Counts
	tally := &Tally{Self: &Identity{Reviews: client.AuthenticationV1().SelfSubjectReviews()}, Local: func() Counts { return local }}
	huge := Counts{Total: 1, Users: map[string]int{strings.Repeat("a", maxCounts): 1}}
	cases := []struct {
		name   string
		caller string // "": none authenticated
		method string
		local  Counts
		code   int
	}{
		{"exec-proxy", "system:exec-proxy", http.MethodGet, r2Counts, http.StatusOK},
		{"a user", "alice", http.MethodGet, r2Counts, http.StatusForbidden},
		{"a user named like a replica", "r2", http.MethodGet, r2Counts, http.StatusForbidden},
		{"no one", "", http.MethodGet, r2Counts, http.StatusForbidden},
		{"not a read", "system:exec-proxy", http.MethodPost, r2Counts, http.StatusMethodNotAllowed},
		{"counts over the bound", "system:exec-proxy", http.MethodGet, huge, http.StatusInternalServerError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			local = tc.local
			req := httptest.NewRequest(tc.method, CountsPath, nil)
			req.Header.Set(HeaderPeer, "r2")
			if tc.caller != "" {
				req = req.WithContext(request.WithUser(req.Context(), &user.DefaultInfo{Name: tc.caller}))
			}
			rec := httptest.NewRecorder()
			tally.ServeHTTP(rec, req)
			if rec.Code != tc.code {
				t.Fatalf("got %d %s, want %d", rec.Code, rec.Body, tc.code)
			}
			if tc.code != http.StatusOK {
				if strings.Contains(rec.Body.String(), "alice") {
					t.Errorf("a refusal names a user: %s", rec.Body)
				}
				var st metav1.Status
				if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || st.Kind != "Status" || st.Code != int32(tc.code) || st.Message == "" {
					t.Errorf("a refusal is no Kubernetes Status: %v %s", err, rec.Body)
				}
				return
			}
			var got Counts
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || !reflect.DeepEqual(got, tc.local) {
				t.Errorf("got %+v (%v), want %+v", got, err, tc.local)
			}
		})
	}
}

// Run asks at once, then at every tick, and leaves nothing behind when its context ends.
func TestTallyRun(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	r2 := newFakePeer(t, answering(r2Counts))
	asked := make(chan struct{})
	r2.asked = asked
	clock := testingclock.NewFakeClock(time.Now())
	tally := &Tally{Clock: clock, Peers: &Peers{Self: "r1", Client: r2.Client(),
		Leases: lister(t, replicaLease("r2", r2.host(), time.Now(), true))}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tally.Run(ctx)
	}()
	<-asked // the first asking, before any tick
	clock.Step(countsPeriod)
	<-asked // a tick's
	cancel()
	<-done
	if got := tally.Of("alice", ""); got.Replicas != 1 || got.User != 2 {
		t.Errorf("got %+v", got)
	}
	r2.Client().CloseIdleConnections()
	r2.Close()
}

func TestAskBoundsTheAnswer(t *testing.T) {
	cases := []struct {
		body string
		err  string
	}{
		{"0123456789", ""},
		{"0123456789a", "answer over 10 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.body, func(t *testing.T) {
			s := newFakePeer(t, func(w http.ResponseWriter) { _, _ = w.Write([]byte(tc.body)) })
			p := &Peers{Self: "r1", Client: s.Client()}
			a := p.ask(context.Background(), peer{"r2", s.host()}, http.MethodGet, CountsPath, "", time.Minute, 10)
			if got := ""; a.Err != nil {
				got = a.Err.Error()
				if got != tc.err {
					t.Errorf("got %q, want %q", got, tc.err)
				}
			} else if tc.err != "" || string(a.Body) != tc.body {
				t.Errorf("got %q, want %q", a.Body, tc.err)
			}
		})
	}
}
