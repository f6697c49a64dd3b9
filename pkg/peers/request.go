package peers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/endpoints/request"
	authenticationclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
	"k8s.io/klog/v2"
)

// Request is what a peer's request says of itself.
type Request struct {
	// From is the replica that asks.
	From string
	// OnBehalfOf is the user it asks for, when the caller is exec-proxy's own identity; User is
	// that user whole (groups, UID, extra), when the replica sent it (HeaderOnBehalfOfUser).
	OnBehalfOf string
	User       *authenticationv1.UserInfo
}

type requestKey struct{}

// NewContext returns ctx marked as the peer request r.
func NewContext(ctx context.Context, r Request) context.Context {
	return context.WithValue(ctx, requestKey{}, r)
}

// FromContext returns the peer request a request is, if it is one.
func FromContext(ctx context.Context) (Request, bool) {
	r, ok := ctx.Value(requestKey{}).(Request)
	return r, ok
}

// WithRequests marks peers' requests in their context. It must run after authentication: the
// user a peer acts for is believed only from a caller authenticated as exec-proxy itself.
func WithRequests(h http.Handler, self *Identity) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		from := req.Header.Get(HeaderPeer)
		if from == "" {
			h.ServeHTTP(w, req)
			return
		}
		r := Request{From: from}
		if behalf := req.Header.Get(HeaderOnBehalfOf); behalf != "" {
			caller, _ := request.UserFrom(req.Context())
			if caller != nil && self.Is(req.Context(), caller.GetName()) {
				r.OnBehalfOf = behalf
				var u authenticationv1.UserInfo
				if raw := req.Header.Get(HeaderOnBehalfOfUser); raw != "" && json.Unmarshal([]byte(raw), &u) == nil && u.Username == behalf {
					r.User = &u
				}
			} else if caller != nil {
				klog.FromContext(req.Context()).Info("Ignoring a peer header from a caller that is not exec-proxy", "header", HeaderOnBehalfOf, "caller", caller.GetName())
			}
		}
		h.ServeHTTP(w, req.WithContext(NewContext(req.Context(), r)))
	})
}

// Identity is the user name exec-proxy's own credentials authenticate as, learnt from a
// SelfSubjectReview once and kept.
type Identity struct {
	Reviews authenticationclient.SelfSubjectReviewInterface

	mu   sync.Mutex
	name string
}

// Is reports whether name is exec-proxy's own identity; false when that is not known yet.
func (i *Identity) Is(ctx context.Context, name string) bool {
	self, err := i.Name(ctx)
	if err != nil {
		klog.FromContext(ctx).Error(err, "Could not learn exec-proxy's own identity")
		return false
	}
	return self == name
}

// Name returns exec-proxy's own user name.
func (i *Identity) Name(ctx context.Context) (string, error) {
	if i == nil {
		return "", fmt.Errorf("no identity configured")
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.name != "" {
		return i.name, nil
	}
	review, err := i.Reviews.Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("self subject review: %w", err)
	}
	i.name = review.Status.UserInfo.Username
	return i.name, nil
}
