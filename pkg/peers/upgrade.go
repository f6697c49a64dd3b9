package peers

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/proxy"
	"k8s.io/klog/v2"

	"github.com/exec-proxy/exec-proxy/pkg/session"
)

// upgradeHeaders are the only headers of a client's upgrade passed to a peer: the client's own
// credentials and kube-apiserver's front-proxy headers stay behind, exec-proxy's credentials go.
// X-Forwarded-For (kube-apiserver's, naming the user's address; the handler adds this replica's
// view) and User-Agent go too, for the other replica's audit records.
var upgradeHeaders = []string{"Connection", "Upgrade", "Sec-Websocket-Key", "Sec-Websocket-Version",
	"Sec-Websocket-Protocol", "Sec-Websocket-Extensions", "X-Stream-Protocol-Version", "Audit-Id",
	"X-Forwarded-For", "User-Agent"}

// Upgrade returns a handler that passes an upgrade request to replica at path (its query kept), with
// exec-proxy's own credentials, acting for onBehalfOf.
func (p *Peers) Upgrade(replica, path string, onBehalfOf authenticationv1.UserInfo) (http.Handler, error) {
	whole, err := json.Marshal(onBehalfOf)
	if err != nil {
		return nil, fmt.Errorf("encoding the user: %w", err)
	}
	if p.UpgradeTransport == nil {
		return nil, fmt.Errorf("no transport for upgrades to peers")
	}
	all, err := p.peers()
	if err != nil {
		return nil, err
	}
	address := ""
	for _, peer := range all {
		if peer.name == replica {
			address = peer.address
		}
	}
	if address == "" {
		return nil, fmt.Errorf("replica %q has no current lease", replica)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		location := &url.URL{Scheme: "https", Host: address, Path: path, RawQuery: req.URL.RawQuery}
		out := req.Clone(req.Context())
		out.Header = http.Header{}
		for _, k := range upgradeHeaders {
			if v := req.Header.Values(k); len(v) > 0 {
				out.Header[k] = v
			}
		}
		out.Header.Set(HeaderPeer, p.Self)
		out.Header.Set(HeaderOnBehalfOf, onBehalfOf.Username)
		out.Header.Set(HeaderOnBehalfOfUser, string(whole))
		h := proxy.NewUpgradeAwareHandler(location, p.UpgradeTransport, false, true, responder{replica})
		h.UpgradeTransport = p.UpgradeTransport
		klog.FromContext(req.Context()).V(4).Info("Passing an upgrade to a peer", "peer", replica, "path", path)
		h.ServeHTTP(w, out)
	}), nil
}

// responder answers a client whose upgrade could not reach the peer.
type responder struct{ replica string }

func (r responder) Error(w http.ResponseWriter, req *http.Request, err error) {
	session.WriteStatus(w, req, apierrors.NewServiceUnavailable(fmt.Sprintf("exec-proxy replica %s could not be reached: %v", r.replica, err)))
}
