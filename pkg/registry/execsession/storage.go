// Package execsession serves execproxy.dev/v1alpha1 execsessions: the live sessions of this
// replica, to list, get, and delete (which ends the session).
package execsession

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	fieldsapi "k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/klog/v2"

	"github.com/exec-proxy/exec-proxy/pkg/api"
	"github.com/exec-proxy/exec-proxy/pkg/peers"
	"github.com/exec-proxy/exec-proxy/pkg/proxy"
	"github.com/exec-proxy/exec-proxy/pkg/session"
)

// Sessions are the live sessions; *proxy.Proxier in production.
type Sessions interface {
	Sessions() []*proxy.Session
}

// REST is the execsessions resource. It stores nothing: it is a view of the sessions in memory.
type REST struct {
	sessions Sessions
	replica  string
	// peers are the other replicas, asked for theirs; nil with one replica.
	peers Peers
}

var (
	_ rest.Storage              = &REST{}
	_ rest.Scoper               = &REST{}
	_ rest.Lister               = &REST{}
	_ rest.Getter               = &REST{}
	_ rest.GracefulDeleter      = &REST{}
	_ rest.SingularNameProvider = &REST{}
)

// NewREST returns the resource over sessions, of this replica and of its peers (nil: none).
func NewREST(sessions Sessions, replica string, peers Peers) *REST {
	return &REST{sessions: sessions, replica: replica, peers: peers}
}

func (*REST) New() runtime.Object                       { return &api.ExecSession{} }
func (*REST) NewList() runtime.Object                   { return &api.ExecSessionList{} }
func (*REST) Destroy()                                  {}
func (*REST) NamespaceScoped() bool                     { return true }
func (*REST) GetSingularName() string                   { return "execsession" }
func (r *REST) object(s *proxy.Session) api.ExecSession { return toObject(s, r.replica) }

// List returns the sessions of the request's namespace (all, when it has none), of every replica.
func (r *REST) List(ctx context.Context, opts *metainternalversion.ListOptions) (runtime.Object, error) {
	list := &api.ExecSessionList{Items: []api.ExecSession{}}
	if opts != nil && opts.LabelSelector != nil && !opts.LabelSelector.Empty() {
		return list, nil // sessions have no labels
	}
	namespace, _ := request.NamespaceFrom(ctx)
	for _, s := range r.sessions.Sessions() {
		if namespace != "" && s.Namespace != namespace {
			continue
		}
		obj := r.object(s)
		if opts != nil && opts.FieldSelector != nil && !opts.FieldSelector.Matches(selectableFields(obj)) {
			continue
		}
		list.Items = append(list.Items, obj)
	}
	if r.asksPeers(ctx) {
		list.Items = append(list.Items, r.peerItems(ctx, opts)...)
		slices.SortStableFunc(list.Items, func(a, b api.ExecSession) int { return a.Status.StartTime.Compare(b.Status.StartTime.Time) })
	}
	return list, nil
}

// Get returns the session, from whichever replica holds it.
func (r *REST) Get(ctx context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	s, err := r.find(ctx, name)
	if apierrors.IsNotFound(err) && r.asksPeers(ctx) {
		return r.askPeers(ctx, http.MethodGet, name, "")
	}
	if err != nil {
		return nil, err
	}
	obj := r.object(s)
	return &obj, nil
}

// Delete ends the session, on whichever replica holds it. Its end record says who killed it.
func (r *REST) Delete(ctx context.Context, name string, _ rest.ValidateObjectFunc, _ *metav1.DeleteOptions) (runtime.Object, bool, error) {
	by := killer(ctx)
	s, err := r.find(ctx, name)
	if apierrors.IsNotFound(err) && r.asksPeers(ctx) {
		obj, err := r.askPeers(ctx, http.MethodDelete, name, by)
		return obj, err == nil, err
	}
	if err != nil {
		return nil, false, err
	}
	obj := r.object(s)
	klog.FromContext(ctx).Info("Session killed", "session", s.ID, "pod", klog.KRef(s.Namespace, s.Pod), "user", s.User, "by", by)
	s.Kill(session.ReasonKilledBy + by)
	return &obj, true, nil
}

// killer is who ends a session: the user, or the one a peer replica asks for.
func killer(ctx context.Context) string {
	if p, ok := peers.FromContext(ctx); ok && p.OnBehalfOf != "" {
		return p.OnBehalfOf
	}
	if u, ok := request.UserFrom(ctx); ok {
		return u.GetName()
	}
	return "unknown"
}

func (r *REST) find(ctx context.Context, name string) (*proxy.Session, error) {
	namespace, _ := request.NamespaceFrom(ctx)
	for _, s := range r.sessions.Sessions() {
		if s.ID == name && s.Namespace == namespace {
			return s, nil
		}
	}
	return nil, apierrors.NewNotFound(api.Resource("execsessions"), name)
}

// selectableFields are what a field selector may match (see api.ExecSessionFieldLabels).
func selectableFields(s api.ExecSession) fieldsapi.Set {
	return fieldsapi.Set{"metadata.name": s.Name, "metadata.namespace": s.Namespace, "spec.user": s.Spec.User,
		"spec.pod": s.Spec.Pod, "spec.type": s.Spec.Type, "status.node": s.Status.Node}
}

func toObject(s *proxy.Session, replica string) api.ExecSession {
	_, protocol := s.Upgraded()
	phase, moderators := api.PhaseRunning, []string(nil)
	if m := s.Moderation(); m != nil {
		moderators = m.Moderators()
		if !m.IsStarted() {
			phase = api.PhaseWaitingForModerator
		}
	}
	return api.ExecSession{
		TypeMeta:   metav1.TypeMeta{APIVersion: api.SchemeGroupVersion.String(), Kind: "ExecSession"},
		ObjectMeta: metav1.ObjectMeta{Name: s.ID, Namespace: s.Namespace, CreationTimestamp: metav1.NewTime(s.Start)},
		Spec: api.ExecSessionSpec{Type: string(s.Kind), User: s.User, Groups: s.Groups, Pod: s.Pod, Container: s.Container,
			Command: s.Command, TTY: s.TTY, Stdin: s.Stdin, Ports: s.Ports, Justification: s.Justification},
		Status: api.ExecSessionStatus{Node: s.Node, KubeletAddress: s.Address, Protocol: protocol,
			StartTime: metav1.NewTime(s.Start), BytesIn: s.BytesIn(), BytesOut: s.BytesOut(), Replica: replica, PolicyRule: s.PolicyRule(),
			Phase: phase, Moderators: moderators},
	}
}

// columns are what kubectl get shows.
var columns = []metav1.TableColumnDefinition{
	{Name: "Name", Type: "string", Format: "name", Description: "The session id, the audit ID of its records."},
	{Name: "User", Type: "string"},
	{Name: "Type", Type: "string"},
	{Name: "Pod", Type: "string"},
	{Name: "Container", Type: "string"},
	{Name: "Command", Type: "string"},
	{Name: "Age", Type: "string"},
	{Name: "Bytes In", Type: "integer"},
	{Name: "Bytes Out", Type: "integer"},
	{Name: "Phase", Type: "string", Description: "WaitingForModerator while a session whose rule requires a moderator waits for one; Running after."},
	{Name: "Replica", Type: "string", Priority: 1},
	{Name: "Rule", Type: "string", Priority: 1, Description: "The session policy rule the session runs under."},
	{Name: "Justification", Type: "string", Priority: 1, Description: "The reason the user gave (kubectl execproxy exec --reason)."},
	{Name: "Moderators", Type: "string", Priority: 1, Description: "Who moderate the session now, when its rule requires a moderator."},
}

// ConvertToTable renders sessions for kubectl get.
func (r *REST) ConvertToTable(_ context.Context, obj runtime.Object, _ runtime.Object) (*metav1.Table, error) {
	var items []api.ExecSession
	switch o := obj.(type) {
	case *api.ExecSession:
		items = []api.ExecSession{*o}
	case *api.ExecSessionList:
		items = o.Items
	default:
		return nil, fmt.Errorf("cannot show %T as a table of execsessions", obj)
	}
	table := &metav1.Table{ColumnDefinitions: columns}
	for i := range items {
		s := &items[i]
		table.Rows = append(table.Rows, metav1.TableRow{
			Cells: []interface{}{s.Name, s.Spec.User, s.Spec.Type, s.Spec.Pod, s.Spec.Container, strings.Join(s.Spec.Command, " "),
				duration.HumanDuration(time.Since(s.Status.StartTime.Time)), s.Status.BytesIn, s.Status.BytesOut, s.Status.Phase, s.Status.Replica,
				s.Status.PolicyRule, s.Spec.Justification, strings.Join(s.Status.Moderators, ",")},
			Object: runtime.RawExtension{Object: s},
		})
	}
	return table, nil
}
