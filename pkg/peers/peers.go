// Package peers lets one exec-proxy replica answer for all: it finds the other replicas in the
// EndpointSlices of their Service and asks each for its own sessions.
package peers

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/klog/v2"
)

// Headers of a request one replica sends another.
const (
	// HeaderPeer asks for the answering replica's own sessions only. It only narrows what is
	// answered, so it is honoured from anyone.
	HeaderPeer = "X-Execproxy-Peer"
	// HeaderOnBehalfOf names the user a replica acts for; trusted only from exec-proxy's own identity.
	HeaderOnBehalfOf = "X-Execproxy-On-Behalf-Of"
)

// askTimeout bounds the answer of one peer: a replica that hangs must not hang the list.
const askTimeout = 5 * time.Second

// maxAnswer bounds the body read from a peer.
const maxAnswer = 64 << 20

// Answer is what one peer said.
type Answer struct {
	Peer string
	Code int
	Body []byte
	Err  error
}

// Peers are the other replicas of this exec-proxy.
type Peers struct {
	// Slices lists the EndpointSlices of the replicas' Service.
	Slices discoverylisters.EndpointSliceNamespaceLister
	// Service names that Service.
	Service string
	// Self is this replica's address and port as the EndpointSlices list it.
	Self string
	// Client reaches peers: it verifies their serving certificates and presents exec-proxy's credentials.
	Client *http.Client
	// Name is how this replica names itself to peers (HeaderPeer).
	Name string
}

// Addresses returns the host:port of every replica that serves, but this one.
func (p *Peers) Addresses() ([]string, error) {
	if p == nil {
		return nil, nil
	}
	slices, err := p.Slices.List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: p.Service}))
	if err != nil {
		return nil, fmt.Errorf("listing the endpoints of %s: %w", p.Service, err)
	}
	seen := map[string]bool{p.Self: true}
	var out []string
	for _, s := range slices {
		port := slicePort(s)
		if port == 0 {
			continue
		}
		for _, e := range s.Endpoints {
			if !serving(e) {
				continue
			}
			for _, a := range e.Addresses {
				hp := net.JoinHostPort(a, strconv.Itoa(int(port)))
				if !seen[hp] {
					seen[hp] = true
					out = append(out, hp)
				}
			}
		}
	}
	return out, nil
}

// slicePort is the replicas' port: the Service of exec-proxy has exactly one.
func slicePort(s *discoveryv1.EndpointSlice) int32 {
	if len(s.Ports) != 1 || s.Ports[0].Port == nil {
		return 0
	}
	return *s.Ports[0].Port
}

// serving holds for replicas that answer, draining ones included: their sessions still run.
func serving(e discoveryv1.Endpoint) bool {
	if e.Conditions.Serving != nil {
		return *e.Conditions.Serving
	}
	return e.Conditions.Ready == nil || *e.Conditions.Ready
}

// Ask sends method path to every peer at once and returns their answers, in no order. onBehalfOf
// names the user the request is made for.
func (p *Peers) Ask(ctx context.Context, method, path, onBehalfOf string) ([]Answer, error) {
	addrs, err := p.Addresses()
	if err != nil || len(addrs) == 0 {
		return nil, err
	}
	answers := make([]Answer, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = p.ask(ctx, addr, method, path, onBehalfOf)
		}()
	}
	wg.Wait()
	return answers, nil
}

func (p *Peers) ask(ctx context.Context, addr, method, path, onBehalfOf string) Answer {
	ctx, cancel := context.WithTimeout(ctx, askTimeout)
	defer cancel()
	a := Answer{Peer: addr}
	req, err := http.NewRequestWithContext(ctx, method, "https://"+addr+path, nil)
	if err != nil {
		a.Err = err
		return a
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set(HeaderPeer, p.Name)
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
	a.Body, a.Err = io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	klog.FromContext(ctx).V(4).Info("Asked a peer", "peer", addr, "method", method, "path", path, "code", a.Code)
	return a
}
