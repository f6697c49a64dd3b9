// Package peers lets one exec-proxy replica answer for all: each replica announces itself in a
// Lease (as kube-apiserver's own identity leases do), and asks the others for their sessions.
package peers

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/proxy"
	coordinationlisters "k8s.io/client-go/listers/coordination/v1"
	"k8s.io/klog/v2"
)

// Headers of a request one replica sends another.
const (
	// HeaderPeer asks for the answering replica's own sessions only. It only narrows what is
	// answered, so it is honoured from anyone.
	HeaderPeer = "X-Execproxy-Peer"
	// HeaderOnBehalfOf names the user a replica acts for; trusted only from exec-proxy's own identity.
	HeaderOnBehalfOf = "X-Execproxy-On-Behalf-Of"
	// HeaderOnBehalfOfUser is that user whole, as JSON (authentication/v1 UserInfo), for the audit
	// records the other replica writes of them; trusted only as HeaderOnBehalfOf is.
	HeaderOnBehalfOfUser = "X-Execproxy-On-Behalf-Of-User"
)

// askTimeout bounds the answer of one peer: a replica that hangs must not hang the list.
const askTimeout = 5 * time.Second

// maxAnswer bounds the body read from a peer.
const maxAnswer = 64 << 20

// Answer is what one peer said.
type Answer struct {
	Peer string // "<replica> at <host:port>"
	Code int
	Body []byte
	Err  error
}

// Peers are the other replicas of this exec-proxy.
type Peers struct {
	// Leases lists the replicas' leases (see LabelReplica).
	Leases coordinationlisters.LeaseNamespaceLister
	// Self is this replica's name, the name of its own lease.
	Self string
	// Client reaches peers: it verifies their serving certificates and presents exec-proxy's credentials.
	Client *http.Client
	// UpgradeTransport reaches them likewise for upgrades (a watch of a session another holds).
	UpgradeTransport proxy.UpgradeRequestRoundTripper
	// Now is the clock leases expire by; time.Now when nil.
	Now func() time.Time
}

// peer is a replica to ask.
type peer struct{ name, address string }

// peers returns every other replica whose lease is current, by name.
func (p *Peers) peers() ([]peer, error) {
	if p == nil {
		return nil, nil
	}
	leases, err := p.Leases.List(labels.SelectorFromSet(labels.Set{LabelReplica: "true"}))
	if err != nil {
		return nil, fmt.Errorf("listing the replicas' leases: %w", err)
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	var out []peer
	for _, l := range leases {
		address := l.Annotations[AnnotationAddress]
		if l.Name == p.Self || address == "" || expired(l, now()) {
			continue
		}
		out = append(out, peer{name: l.Name, address: address})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// expired holds for the lease of a replica that stopped renewing it: it crashed, or is gone.
func expired(l *coordinationv1.Lease, now time.Time) bool {
	if l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
		return true
	}
	return now.After(l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second))
}

// Ask sends method path to every peer at once and returns their answers, in no order. onBehalfOf
// names the user the request is made for.
func (p *Peers) Ask(ctx context.Context, method, path, onBehalfOf string) ([]Answer, error) {
	_, answers, err := p.askAll(ctx, method, path, onBehalfOf, askTimeout, maxAnswer)
	return answers, err
}

// askAll is Ask with each answer bounded by timeout and limit bytes; answers[i] is peers[i]'s.
func (p *Peers) askAll(ctx context.Context, method, path, onBehalfOf string, timeout time.Duration, limit int64) ([]peer, []Answer, error) {
	peers, err := p.peers()
	if err != nil || len(peers) == 0 {
		return nil, nil, err
	}
	answers := make([]Answer, len(peers))
	var wg sync.WaitGroup
	for i, peer := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = p.ask(ctx, peer, method, path, onBehalfOf, timeout, limit)
		}()
	}
	wg.Wait()
	return peers, answers, nil
}

func (p *Peers) ask(ctx context.Context, peer peer, method, path, onBehalfOf string, timeout time.Duration, limit int64) Answer {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	a := Answer{Peer: peer.name + " at " + peer.address}
	req, err := http.NewRequestWithContext(ctx, method, "https://"+peer.address+path, nil)
	if err != nil {
		a.Err = err
		return a
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set(HeaderPeer, p.Self)
	if onBehalfOf != "" {
		req.Header.Set(HeaderOnBehalfOf, onBehalfOf)
	}
	resp, err := p.Client.Do(req)
	if err != nil {
		a.Err = err
		return a
	}
	defer resp.Body.Close()
	a.Code = resp.StatusCode
	a.Body, a.Err = io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if a.Err == nil && int64(len(a.Body)) > limit {
		a.Body, a.Err = nil, fmt.Errorf("answer over %d bytes", limit)
	}
	klog.FromContext(ctx).V(4).Info("Asked a peer", "peer", peer.name, "method", method, "path", path, "code", a.Code)
	return a
}

// Open sends GET path to every peer at once and returns the body of the first that answers 200,
// for the caller to stream and close; the other answers are returned for the caller to explain
// why there is none.
func (p *Peers) Open(ctx context.Context, path string) (io.ReadCloser, []Answer, error) {
	peers, err := p.peers()
	if err != nil || len(peers) == 0 {
		return nil, nil, err
	}
	type opened struct {
		body   io.ReadCloser
		answer Answer
	}
	results := make(chan opened, len(peers))
	for _, peer := range peers {
		go func() {
			body, a := p.open(ctx, peer, path)
			results <- opened{body, a}
		}()
	}
	var found io.ReadCloser
	var others []Answer
	for range peers {
		r := <-results
		switch {
		case r.body != nil && found == nil:
			found = r.body
		case r.body != nil:
			r.body.Close() // another replica holds a copy: the first one is enough
		default:
			others = append(others, r.answer)
		}
	}
	return found, others, nil
}

// open returns the body of peer's 200 answer, or the answer that is not one. Only the answer's
// head is bounded by askTimeout: a body streams for as long as the caller reads it.
func (p *Peers) open(ctx context.Context, peer peer, path string) (io.ReadCloser, Answer) {
	ctx, cancel := context.WithCancel(ctx)
	timer := time.AfterFunc(askTimeout, cancel)
	a := Answer{Peer: peer.name + " at " + peer.address}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+peer.address+path, nil)
	if err != nil {
		cancel()
		a.Err = err
		return nil, a
	}
	req.Header.Set(HeaderPeer, p.Self)
	resp, err := p.Client.Do(req)
	if err == nil && !timer.Stop() { // the timer cancelled the body's context as the head came
		resp.Body.Close()
		err = fmt.Errorf("no answer within %v", askTimeout)
	}
	if err != nil {
		cancel()
		a.Err = err
		return nil, a
	}
	a.Code = resp.StatusCode
	if a.Code != http.StatusOK {
		a.Body, a.Err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		cancel()
		return nil, a
	}
	return cancelOnClose{resp.Body, cancel}, a
}

// cancelOnClose releases the request's context with its body.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}
