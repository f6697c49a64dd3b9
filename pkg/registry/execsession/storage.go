// Package execsession serves execproxy.dev/v1alpha1 execsessions: the live sessions of this
// replica, to list, get, and delete (which ends the session).
package execsession

import (
	"context"
	"fmt"
	"os"
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
	"github.com/exec-proxy/exec-proxy/pkg/proxy"
)

// Sessions are the live sessions; *proxy.Proxier in production.
type Sessions interface {
	Sessions() []*proxy.Session
}

// REST is the execsessions resource. It stores nothing: it is a view of the sessions in memory.
type REST struct {
	sessions Sessions
	replica  string
}

var (
	_ rest.Storage              = &REST{}
	_ rest.Scoper               = &REST{}
	_ rest.Lister               = &REST{}
	_ rest.Getter               = &REST{}
	_ rest.GracefulDeleter      = &REST{}
	_ rest.SingularNameProvider = &REST{}
)

// NewREST returns the resource over sessions; replica names this exec-proxy (its host name).
func NewREST(sessions Sessions) *REST {
	replica, _ := os.Hostname()
	return &REST{sessions: sessions, replica: replica}
}

func (*REST) New() runtime.Object                       { return &api.ExecSession{} }
func (*REST) NewList() runtime.Object                   { return &api.ExecSessionList{} }
func (*REST) Destroy()                                  {}
func (*REST) NamespaceScoped() bool                     { return true }
func (*REST) GetSingularName() string                   { return "execsession" }
func (r *REST) object(s *proxy.Session) api.ExecSession { return toObject(s, r.replica) }

// List returns the sessions of the request's namespace (all, when it has none).
func (r *REST) List(ctx context.Context, opts *metainternalversion.ListOptions) (runtime.Object, error) {
	namespace, _ := request.NamespaceFrom(ctx)
	list := &api.ExecSessionList{Items: []api.ExecSession{}}
	for _, s := range r.sessions.Sessions() {
		if namespace != "" && s.Namespace != namespace {
			continue
		}
		obj := r.object(s)
		if opts != nil && opts.LabelSelector != nil && !opts.LabelSelector.Empty() {
			continue // sessions have no labels
		}
		if opts != nil && opts.FieldSelector != nil && !opts.FieldSelector.Matches(selectableFields(obj)) {
			continue
		}
		list.Items = append(list.Items, obj)
	}
	return list, nil
}

func (r *REST) Get(ctx context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	s, err := r.find(ctx, name)
	if err != nil {
		return nil, err
	}
	obj := r.object(s)
	return &obj, nil
}

// Delete ends the session. Its end record says who killed it.
func (r *REST) Delete(ctx context.Context, name string, _ rest.ValidateObjectFunc, _ *metav1.DeleteOptions) (runtime.Object, bool, error) {
	s, err := r.find(ctx, name)
	if err != nil {
		return nil, false, err
	}
	by := "unknown"
	if u, ok := request.UserFrom(ctx); ok {
		by = u.GetName()
	}
	obj := r.object(s)
	klog.FromContext(ctx).Info("Session killed", "session", s.ID, "pod", klog.KRef(s.Namespace, s.Pod), "user", s.User, "by", by)
	s.Kill(proxy.ReasonKilledBy + by)
	return &obj, true, nil
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
	return api.ExecSession{
		TypeMeta:   metav1.TypeMeta{APIVersion: api.SchemeGroupVersion.String(), Kind: "ExecSession"},
		ObjectMeta: metav1.ObjectMeta{Name: s.ID, Namespace: s.Namespace, CreationTimestamp: metav1.NewTime(s.Start)},
		Spec: api.ExecSessionSpec{Type: string(s.Kind), User: s.User, Groups: s.Groups, Pod: s.Pod, Container: s.Container,
			Command: s.Command, TTY: s.TTY, Stdin: s.Stdin, Ports: s.Ports},
		Status: api.ExecSessionStatus{Node: s.Node, KubeletAddress: s.Address, Protocol: protocol,
			StartTime: metav1.NewTime(s.Start), BytesIn: s.BytesIn(), BytesOut: s.BytesOut(), Replica: replica},
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
	{Name: "Replica", Type: "string", Priority: 1},
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
				duration.HumanDuration(time.Since(s.Status.StartTime.Time)), s.Status.BytesIn, s.Status.BytesOut, s.Status.Replica},
			Object: runtime.RawExtension{Object: s},
		})
	}
	return table, nil
}
