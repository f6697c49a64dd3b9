package execsession

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/warning"

	"github.com/exec-proxy/exec-proxy/pkg/api"
	"github.com/exec-proxy/exec-proxy/pkg/peers"
)

// Peers asks the other replicas; *peers.Peers in production.
type Peers interface {
	Ask(ctx context.Context, method, path, onBehalfOf string) ([]peers.Answer, error)
}

// asksPeers is false for a peer's own request: each replica answers for itself only, so a list
// never goes round in circles.
func (r *REST) asksPeers(ctx context.Context) bool {
	_, fromPeer := peers.FromContext(ctx)
	return r.peers != nil && !fromPeer
}

// peerItems returns the sessions the peers hold; a peer that cannot answer is named in a warning
// (kubectl prints it) rather than failing the list, so one lost replica does not hide the rest.
func (r *REST) peerItems(ctx context.Context, opts *metainternalversion.ListOptions) []api.ExecSession {
	query := url.Values{}
	if opts != nil && opts.FieldSelector != nil && !opts.FieldSelector.Empty() {
		query.Set("fieldSelector", opts.FieldSelector.String())
	}
	answers, err := r.peers.Ask(ctx, http.MethodGet, sessionsPath(ctx, "", query), "")
	if err != nil {
		warning.AddWarning(ctx, "", fmt.Sprintf("exec-proxy could not find its other replicas; only replica %s's sessions are listed: %v", r.replica, err))
		return nil
	}
	var items []api.ExecSession
	for _, a := range answers {
		var list api.ExecSessionList
		if err := decode(a, &list); err != nil {
			warning.AddWarning(ctx, "", fmt.Sprintf("the sessions of exec-proxy replica %s are not listed: %v", a.Peer, err))
			continue
		}
		items = append(items, list.Items...)
	}
	return items
}

// askPeers sends a get or delete of one session to the peers, and returns it from the one that
// holds it.
func (r *REST) askPeers(ctx context.Context, method, name, onBehalfOf string) (*api.ExecSession, error) {
	notFound := apierrors.NewNotFound(api.Resource("execsessions"), name)
	answers, err := r.peers.Ask(ctx, method, sessionsPath(ctx, name, nil), onBehalfOf)
	if err != nil {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("execsession %q is not on exec-proxy replica %s, and the other replicas could not be found: %v", name, r.replica, err))
	}
	for _, a := range answers {
		var s api.ExecSession
		if decode(a, &s) == nil {
			return &s, nil
		}
	}
	if failed := failures(answers); failed != "" {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("execsession %q is not on exec-proxy replica %s, and other replicas could not be asked: %s",
			name, r.replica, failed))
	}
	return nil, notFound
}

// sessionsPath is the path of the request's execsessions (or of one) on a peer.
func sessionsPath(ctx context.Context, name string, query url.Values) string {
	path := "/apis/" + api.GroupName + "/" + api.SchemeGroupVersion.Version
	if namespace, _ := request.NamespaceFrom(ctx); namespace != "" {
		path += "/namespaces/" + url.PathEscape(namespace)
	}
	path += "/execsessions"
	if name != "" {
		path += "/" + url.PathEscape(name)
	}
	if len(query) > 0 {
		path += "?" + query.Encode()
	}
	return path
}

// decode reads a peer's 200 answer into obj, or says why there is none.
func decode(a peers.Answer, obj any) error {
	if a.Err != nil {
		return a.Err
	}
	if a.Code != http.StatusOK {
		var st metav1.Status
		if json.Unmarshal(a.Body, &st) == nil && st.Message != "" {
			return fmt.Errorf("%d %s", a.Code, st.Message)
		}
		return fmt.Errorf("answered %d", a.Code)
	}
	if err := json.Unmarshal(a.Body, obj); err != nil {
		return fmt.Errorf("unreadable answer: %w", err)
	}
	return nil
}
