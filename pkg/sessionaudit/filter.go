package sessionaudit

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/google/uuid"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/endpoints/responsewriter"

	"github.com/exec-proxy/exec-proxy/pkg/session"
)

// SessionIDHeader carries the session id on every answer to a session request, so a user's
// refusal or session can be found in the audit.
const SessionIDHeader = "X-Exec-Proxy-Session-Id"

// IsSession reports whether info is a request for a session: a pods exec, attach or portforward
// subresource, as the request-info parser reads it, whatever the group, method or anything after it.
// The route and the registry serve sessions by this same parse, so every request they could serve
// as a session is one here.
func IsSession(info *apirequest.RequestInfo) bool {
	return info != nil && info.IsResourceRequest && info.Resource == "pods" && opensSession(info.Subresource)
}

func opensSession(subresource string) bool {
	_, ok := session.KindFor(subresource)
	return ok
}

// WithAttempts opens an Attempt for every session request before authentication, so that a
// request refused anywhere in the chain (authentication, authorization, parameters, the proxy)
// still gets its refused record. It must be the outermost filter. What is a session is decided
// from resolver's RequestInfo, the one the chain then authorizes and serves (see Resolved): the
// filter puts it in the request's context.
func WithAttempts(handler http.Handler, r *Auditor, resolver apirequest.RequestInfoResolver) http.Handler {
	if r == nil {
		return handler
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		info, err := resolver.NewRequestInfo(req)
		if err != nil { // the chain's own parse fails too, and refuses the request
			handler.ServeHTTP(w, req)
			return
		}
		req = req.WithContext(apirequest.WithRequestInfo(req.Context(), info))
		if !IsSession(info) {
			handler.ServeHTTP(w, req)
			return
		}
		a := NewAttempt(req, info.Subresource, info.Namespace, info.Name)
		w.Header().Set(SessionIDHeader, a.rec.SessionID)
		rw := &refusalWriter{ResponseWriter: w}
		handler.ServeHTTP(responsewriter.WrapForHTTP1Or2(rw), req.WithContext(WithAttempt(req.Context(), a)))
		if a.Detached() {
			return // the session runs on and writes its own last record
		}
		a.Update(func(rec *Record) { finishRefusal(rec, rw) })
		r.Refused(a) // a no-op when the session already has its end record
	})
}

// Resolved is the chain's RequestInfoResolver behind WithAttempts: it returns the RequestInfo the
// filter resolved for the request, so that what is authorized and served is what was audited.
type Resolved struct {
	Delegate apirequest.RequestInfoResolver
}

func (r Resolved) NewRequestInfo(req *http.Request) (*apirequest.RequestInfo, error) {
	if info, ok := apirequest.RequestInfoFrom(req.Context()); ok {
		return info, nil
	}
	return r.Delegate.NewRequestInfo(req)
}

// NewAttempt opens the attempt of req, a request for a session of kind on namespace/pod.
func NewAttempt(req *http.Request, kind, namespace, pod string) *Attempt {
	return &Attempt{rec: newRecord(req, namespace, pod, kind)}
}

// FinishDetached writes what the filter would have for a detached attempt that never became a
// session (its connection was taken, then the kubelet refused): its refusal record. A no-op when the
// session has its end record.
func FinishDetached(r *Auditor, a *Attempt) {
	if r == nil || a == nil {
		return
	}
	a.Update(func(rec *Record) { finishRefusal(rec, &refusalWriter{}) })
	r.Refused(a)
}

func newRecord(req *http.Request, namespace, pod, kind string) Record {
	q := req.URL.Query()
	rec := Record{
		Requester: Requester{SessionID: uuid.NewString(), RequestURI: req.RequestURI, UserAgent: req.UserAgent(),
			APIServerAuditID: req.Header.Get("Audit-ID"),
			KubectlCommand:   headerValue(req.Header, "Kubectl-Command"), KubectlSession: headerValue(req.Header, "Kubectl-Session")},
		Target: Target{Kind: kind, Namespace: namespace, Pod: pod,
			Container: q.Get("container"), Command: q["command"], TTY: boolParam(q, "tty"), Stdin: boolParam(q, "stdin")},
		Outcome: Outcome{Start: time.Now()},
	}
	for _, ip := range utilnet.SourceIPs(req) {
		rec.SourceIPs = append(rec.SourceIPs, ip.String())
	}
	for _, p := range q["ports"] {
		if n, err := strconv.ParseUint(p, 10, 16); err == nil {
			rec.Ports = append(rec.Ports, int32(n))
		}
	}
	return rec
}

// maxKubectlHeader bounds what is kept of a Kubectl-* header: kubectl's are a command path
// ("kubectl cp") and a UUID.
const maxKubectlHeader = 128

// headerValue is a client's header as a record keeps it: printable ASCII only (anything else is
// '?'), at most maxKubectlHeader bytes.
func headerValue(h http.Header, name string) string {
	v := []byte(h.Get(name))
	if len(v) > maxKubectlHeader {
		v = v[:maxKubectlHeader]
	}
	for i, c := range v {
		if c < 0x20 || c > 0x7e {
			v[i] = '?'
		}
	}
	return string(v)
}

func boolParam(q url.Values, name string) bool {
	b, _ := strconv.ParseBool(q.Get(name))
	return b
}

// finishRefusal completes the record of an attempt that did not become a session.
func finishRefusal(rec *Record, rw *refusalWriter) {
	rec.End = time.Now()
	if rec.Code == 0 {
		rec.Code = statusCode(rw.code)
	}
	if rec.Message == "" {
		var st metav1.Status
		if json.Unmarshal(rw.body, &st) == nil {
			rec.Message = st.Message
		}
	}
	if rec.User.Username == "" {
		rec.User.Username = "system:anonymous"
	}
	if rec.Reason == "" {
		rec.Reason = refusalReason(rec.Code)
	}
}

// statusCode is the code the chain answered with: a handler that wrote nothing answered 200.
func statusCode(code int) int32 {
	if code == 0 {
		return http.StatusOK
	}
	return int32(code)
}

func refusalReason(code int32) string {
	switch {
	case code == http.StatusUnauthorized:
		return "unauthenticated"
	case code == http.StatusForbidden:
		return "forbidden"
	case code == http.StatusTooManyRequests:
		return "throttled"
	case code >= 500:
		return "unavailable"
	}
	return "invalid request"
}

// maxBody bounds how much of a refusal's body is kept to read its Status message.
const maxBody = 8 << 10

// refusalWriter notes the code and the start of the body of what the chain answered.
type refusalWriter struct {
	http.ResponseWriter
	code int
	body []byte
}

func (w *refusalWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *refusalWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *refusalWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	if room := maxBody - len(w.body); room > 0 {
		w.body = append(w.body, p[:min(room, len(p))]...)
	}
	return w.ResponseWriter.Write(p)
}
