package proxy

import (
	"context"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/exec-proxy/exec-proxy/internal/poll"
	"github.com/exec-proxy/exec-proxy/pkg/policy"
	"github.com/exec-proxy/exec-proxy/pkg/session"
	"github.com/exec-proxy/exec-proxy/pkg/sessionaudit"
)

// TestModeratedSession: a session whose rule requires a moderator waits, before exec-proxy
// connects to its kubelet, until one arrives; it is refused with a 403 naming the rule when none
// does within the rule's timeout, or when it is killed while it waits; it ends once its last
// moderator has been gone for the grace period; a session without a terminal is refused.
func TestModeratedSession(t *testing.T) {
	for _, protocol := range []string{"spdy", "websocket"} {
		t.Run(protocol, func(t *testing.T) {
			// client-go's WebSocket heartbeat outlives a session that exec-proxy ended.
			checkLeaks(t, goleak.IgnoreTopFunction("k8s.io/client-go/tools/remotecommand.(*heartbeat).start"))
			kubelet := newFakeKubelet(t)
			newProxier := func(m policy.Moderation) (*Proxier, *auditBackend) {
				p := newTestProxier(t, kubelet.caFile, Limits{}, runningPod("p", "n1", "a"), nodeAt("n1", "127.0.0.1", kubelet.port(t)))
				p.Policy = policyOf(t, policy.Rule{Name: "moderated", RequireModerator: &m})
				b := &auditBackend{}
				p.Audit = sessionaudit.NewAuditor(b, sessionaudit.FailClosed)
				return p, b
			}
			waiting := func(p *Proxier) *Session {
				var s *Session
				poll.Until(t, func() bool {
					sessions := p.Sessions()
					if len(sessions) == 1 {
						s = sessions[0]
					}
					return s != nil
				})
				if kubelet.header.Load() != nil {
					t.Fatal("the kubelet was asked before a moderator arrived")
				}
				return s
			}

			t.Run("starts with its moderator, ends once the last one left", func(t *testing.T) {
				kubelet.header.Store(nil)
				p, b := newProxier(policy.Moderation{Timeout: metav1.Duration{Duration: time.Minute}, GracePeriod: metav1.Duration{Duration: 50 * time.Millisecond}})
				srv := auditedFront(t, p)
				stdin, typing := io.Pipe()
				defer typing.Close()
				done := make(chan error, 1)
				go func() {
					_, err := execVia(t, srv, protocol, "alice", execCase{command: []string{"cat"}, tty: true, stdin: stdin})
					done <- err
				}()
				s := waiting(p)
				if m := s.Moderation(); m == nil || s.Terminal() == nil {
					t.Fatal("a moderated session without its moderation or terminal")
				}
				leaveBob := s.Moderation().Arrive("bob")
				leaveCarol := s.Moderation().Arrive("carol")
				poll.Until(t, func() bool { return s.Moderation().IsStarted() })
				// A join as the session starts: over SPDY, the client opens stdout after the 101.
				j, err := s.JoinStarted(context.Background(), "bob")
				if err != nil {
					t.Fatalf("joining as it started: %v", err)
				}
				j.Leave(klog.Background())
				leaveBob()
				if _, err := typing.Write([]byte("x")); err != nil { // one moderator still there: it goes on
					t.Fatal(err)
				}
				leaveCarol()
				<-done
				poll.Until(t, func() bool { return b.record("end") != nil })
				if reason := b.record("end")[sessionaudit.AnnotationReason]; reason != session.ReasonModeratorLeft {
					t.Errorf("ended for %q, want %q", reason, session.ReasonModeratorLeft)
				}
				start := b.record("start")
				var moderators []string
				if start == nil || json.Unmarshal([]byte(start[sessionaudit.AnnotationModerators]), &moderators) != nil ||
					!slices.Equal(moderators, []string{"bob", "carol"}) || start[sessionaudit.AnnotationPolicyRule] != "moderated" {
					t.Errorf("start record %v, want its moderators bob and carol and its rule", start)
				}
			})

			t.Run("refused when no moderator arrives in time", func(t *testing.T) {
				kubelet.header.Store(nil)
				p, b := newProxier(policy.Moderation{Timeout: metav1.Duration{Duration: 50 * time.Millisecond}, GracePeriod: metav1.Duration{Duration: time.Minute}})
				srv := auditedFront(t, p)
				_, err := execVia(t, srv, protocol, "alice", execCase{command: []string{"sh"}, tty: true, stdin: strings.NewReader("")})
				if err == nil || !strings.Contains(err.Error(), `session policy rule "moderated" requires a moderator, and none joined within 50ms`) {
					t.Errorf("got %v, want the rule's refusal", err)
				}
				if rec := b.record("refused"); rec[sessionaudit.AnnotationPolicyRule] != "moderated" {
					t.Errorf("refused record %v, want one naming the rule", rec)
				}
				if kubelet.header.Load() != nil {
					t.Error("the kubelet was asked")
				}
			})

			t.Run("killed while it waits", func(t *testing.T) {
				kubelet.header.Store(nil)
				p, b := newProxier(policy.Moderation{Timeout: metav1.Duration{Duration: time.Minute}})
				srv := auditedFront(t, p)
				done := make(chan error, 1)
				go func() {
					_, err := execVia(t, srv, protocol, "alice", execCase{command: []string{"sh"}, tty: true, stdin: strings.NewReader("")})
					done <- err
				}()
				waiting(p).Kill(session.ReasonKilledBy + "carol")
				if err := <-done; err == nil || !strings.Contains(err.Error(), "the session ended while it waited for a moderator") ||
					!strings.Contains(err.Error(), "killed by carol") {
					t.Errorf("got %v, want the kill's refusal", err)
				}
				if rec := b.record("refused"); rec == nil {
					t.Errorf("no refused record: %s", b.kinds())
				}
			})

			t.Run("no terminal to moderate", func(t *testing.T) {
				kubelet.header.Store(nil)
				p, _ := newProxier(policy.Moderation{})
				srv := auditedFront(t, p)
				_, err := execVia(t, srv, protocol, "alice", execCase{command: []string{"ls"}})
				if err == nil || !strings.Contains(err.Error(), "only exec and attach with a TTY (-it) can be moderated") {
					t.Errorf("got %v, want the rule's refusal", err)
				}
			})
		})
	}
}

// A session that waits for its moderator is bounded by its rule's moderator timeout, not ended as
// idle, nor for its duration, while it waits.
func TestWaitingSessionNotSwept(t *testing.T) {
	m := &policy.Moderation{Timeout: metav1.Duration{Duration: time.Hour}, GracePeriod: metav1.Duration{Duration: time.Minute}}
	d := policy.Decision{Rule: "moderated", Moderation: m, Limits: policy.Limits{IdleTimeout: metav1.Duration{Duration: time.Second},
		MaxDuration: metav1.Duration{Duration: time.Second}}}
	s := newSession(context.Background(), Identity{ID: "s", Kind: session.KindExec, Asked: Asked{TTY: true, Stdin: true}}, d, 0, nil)
	defer s.cancel()
	live := newLiveSessions()
	if err := live.add(s); err != nil {
		t.Fatal(err)
	}
	live.sweep(time.Now().Add(time.Minute), Limits{})
	if why := s.EndReason(); why != "" {
		t.Fatalf("a waiting session was ended: %s", why)
	}
	s.Moderation().Start()
	live.sweep(time.Now().Add(time.Minute), Limits{})
	if why := s.EndReason(); why != session.ReasonMaxDuration {
		t.Errorf("a started session past its limits ended for %q, want %q", why, session.ReasonMaxDuration)
	}
}
