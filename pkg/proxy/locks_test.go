package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	auditinternal "k8s.io/apiserver/pkg/apis/audit"
	"k8s.io/apiserver/pkg/authentication/user"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"

	"github.com/exec-proxy/exec-proxy/internal/poll"
	"github.com/exec-proxy/exec-proxy/pkg/session"
	"github.com/exec-proxy/exec-proxy/pkg/sessionaudit"
)

// fakeLocks locks out the users it holds, with the Status package locks refuses with.
type fakeLocks struct {
	mu     sync.Mutex
	locked sets.Set[string]
}

const lockMessage = `user "alice" is locked out of sessions by exec-proxy lock "user-alice": incident 42`

func (f *fakeLocks) Check(user string, _ []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.locked.Has(user) {
		return nil
	}
	return &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: http.StatusForbidden,
		Reason: metav1.StatusReasonForbidden, Message: lockMessage, Details: &metav1.StatusDetails{Kind: "execlocks", Name: "user-" + user}}}
}

func (f *fakeLocks) lock(user string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.locked.Insert(user)
}

// of is the first record of kind for user, or nil.
func (b *auditBackend) of(kind, user string) *auditinternal.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.all {
		if e.Annotations[sessionaudit.AnnotationRecord] == kind && e.User.Username == user {
			return e
		}
	}
	return nil
}

// auditedFront serves exec requests for pod ns/<name> to p behind the session audit's filter, as
// the handler chain does: refusals get their refused record from it.
func auditedFront(t *testing.T, p *Proxier) *httptest.Server {
	resolver := &genericapirequest.RequestInfoFactory{APIPrefixes: sets.NewString("api"), GrouplessAPIPrefixes: sets.NewString("api")}
	inner := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		u := req.Header.Get("X-Test-User")
		ctx := genericapirequest.WithUser(req.Context(), &user.DefaultInfo{Name: u})
		sessionaudit.AttemptFrom(ctx).Update(func(rec *sessionaudit.Record) { rec.User.Username = u })
		q := req.URL.Query()
		r := session.Request{Kind: session.KindExec, Namespace: "ns", Pod: "p", Exec: &corev1.PodExecOptions{Container: q.Get("container"),
			Command: q["command"], Stdin: q.Get("stdin") == "true", Stdout: true, Stderr: q.Get("stderr") == "true", TTY: q.Get("tty") == "true"}}
		h, err := p.Handler(ctx, r)
		if err != nil {
			session.WriteStatus(w, req, err)
			return
		}
		h.ServeHTTP(w, req.WithContext(ctx))
	})
	audited := sessionaudit.WithAttempts(inner, p.Audit, resolver)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		req.URL.Path = "/api/v1/namespaces/ns/pods" + req.URL.Path + "/exec"
		audited.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestLockedUser: a lock ends its user's live session with the lock as the end reason (as
// locks.Locks.End does on every replica), leaves others' alone, and refuses the user's new session
// with a 403 naming the lock, in the response and in the refused record.
func TestLockedUser(t *testing.T) {
	checkLeaks(t)
	kubelet := newFakeKubelet(t)
	p := newTestProxier(t, kubelet.caFile, Limits{}, runningPod("p", "n1", "a"), nodeAt("n1", "127.0.0.1", kubelet.port(t)))
	b := &auditBackend{}
	p.Audit = sessionaudit.NewAuditor(b, sessionaudit.FailClosed)
	locks := &fakeLocks{locked: sets.New[string]()}
	p.Locks = locks
	srv := auditedFront(t, p)

	done := map[string]chan error{}
	var feeders []*io.PipeWriter
	for _, name := range []string{"alice", "bob"} {
		stdin, feeder := io.Pipe()
		feeders = append(feeders, feeder)
		done[name] = make(chan error, 1)
		go func() {
			_, err := execVia(t, srv, "spdy", name, execCase{command: []string{"cat"}, stdin: stdin})
			done[name] <- err
		}()
	}
	t.Cleanup(func() {
		for _, f := range feeders {
			_ = f.Close()
		}
	})
	// A write is read once client-go has every stream, which the kubelet has then taken: the
	// sessions are under way.
	for _, f := range feeders {
		if _, err := io.WriteString(f, "hi\n"); err != nil {
			t.Fatal(err)
		}
	}

	locks.lock("alice")
	const reason = session.ReasonLockedBy + `exec-proxy lock "user-alice" (incident 42)`
	for _, s := range p.Sessions() {
		if locks.Check(s.User, s.Groups) != nil {
			s.Kill(reason)
		}
	}
	<-done["alice"]
	poll.Until(t, func() bool { return b.of("end", "alice") != nil })
	if got := b.of("end", "alice").Annotations[sessionaudit.AnnotationReason]; got != reason {
		t.Errorf("alice's end record: reason %q, want %q", got, reason)
	}
	if n := len(p.Sessions()); n != 1 || p.Sessions()[0].User != "bob" {
		t.Errorf("live after the lock: %d sessions, want bob's", n)
	}

	code, st, _ := rawUpgrade(t, srv, "spdy", "/p?container=a&command=echo&stdout=true") // as alice
	if code != http.StatusForbidden || st.Message != lockMessage || st.Details == nil || st.Details.Name != "user-alice" {
		t.Errorf("alice's new session: %d %q %+v, want a 403 naming the lock", code, st.Message, st.Details)
	}
	refused := b.of("refused", "alice")
	if refused == nil || refused.ResponseStatus.Code != http.StatusForbidden || refused.ResponseStatus.Message != lockMessage ||
		refused.Annotations[sessionaudit.AnnotationReason] != "forbidden" {
		t.Errorf("refused record: %+v", refused)
	}
	_ = feeders[1].Close()
	if err := <-done["bob"]; err != nil {
		t.Errorf("bob's session: %v", err)
	}
}
