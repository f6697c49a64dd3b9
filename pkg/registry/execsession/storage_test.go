package execsession

import (
	"context"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/exec-proxy/exec-proxy/pkg/api"
	"github.com/exec-proxy/exec-proxy/pkg/proxy"
	"github.com/exec-proxy/exec-proxy/pkg/session"
)

type fakeSessions []*proxy.Session

func (f fakeSessions) Sessions() []*proxy.Session { return f }

func sessions() fakeSessions {
	start := time.Now().Add(-time.Minute)
	return fakeSessions{
		{Identity: proxy.Identity{ID: "s1", Kind: session.KindExec, User: "alice", Namespace: "a", Pod: "p", Container: "c", Asked: proxy.Asked{Command: []string{"sh"}, TTY: true}, Start: start}},
		{Identity: proxy.Identity{ID: "s2", Kind: session.KindPortForward, User: "bob", Namespace: "b", Pod: "q", Asked: proxy.Asked{Ports: []int32{80}}, Start: start}},
		{Identity: proxy.Identity{ID: "s3", Kind: session.KindAttach, User: "alice", Namespace: "b", Pod: "q", Container: "c", Start: start}},
	}
}

func ctxIn(namespace, name string) context.Context {
	ctx := request.WithNamespace(context.Background(), namespace)
	return request.WithUser(ctx, &user.DefaultInfo{Name: name})
}

func names(obj interface{}) []string {
	var out []string
	for _, s := range obj.(*api.ExecSessionList).Items {
		out = append(out, s.Namespace+"/"+s.Name)
	}
	return out
}

func TestList(t *testing.T) {
	cases := []struct {
		name      string
		namespace string
		selector  string
		want      []string
	}{
		{"all namespaces", "", "", []string{"a/s1", "b/s2", "b/s3"}},
		{"one namespace", "b", "", []string{"b/s2", "b/s3"}},
		{"empty namespace", "c", "", nil},
		{"by user", "", "spec.user=alice", []string{"a/s1", "b/s3"}},
		{"by type", "b", "spec.type=portforward", []string{"b/s2"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := &metainternalversion.ListOptions{}
			if tc.selector != "" {
				opts.FieldSelector = fields.ParseSelectorOrDie(tc.selector)
			}
			obj, err := NewREST(sessions(), "r1", nil).List(ctxIn(tc.namespace, "admin"), opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := names(obj); len(got) != len(tc.want) || (len(got) > 0 && !equal(got, tc.want)) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func equal(a, b []string) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestGetAndDelete(t *testing.T) {
	cases := []struct {
		name, namespace, id string
		found               bool
	}{
		{"found", "a", "s1", true},
		{"other namespace", "b", "s1", false},
		{"unknown", "a", "nope", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			all := sessions()
			r := NewREST(all, "r1", nil)
			obj, err := r.Get(ctxIn(tc.namespace, "admin"), tc.id, &metav1.GetOptions{})
			if tc.found != (err == nil) || (!tc.found && !apierrors.IsNotFound(err)) {
				t.Fatalf("get: %v", err)
			}
			if tc.found {
				s := obj.(*api.ExecSession)
				if s.Spec.User != "alice" || s.Spec.Command[0] != "sh" || !s.Spec.TTY || s.Status.StartTime.IsZero() {
					t.Errorf("object %+v", s)
				}
			}
			_, immediate, err := r.Delete(ctxIn(tc.namespace, "carol"), tc.id, nil, nil)
			if tc.found != (err == nil) || (!tc.found && !apierrors.IsNotFound(err)) {
				t.Fatalf("delete: %v", err)
			}
			for _, s := range all {
				killed := s.ID == tc.id && tc.found
				if reason := s.EndReason(); (reason == "killed by carol") != killed || (!killed && reason != "") {
					t.Errorf("session %s: end reason %q", s.ID, reason)
				}
			}
			if tc.found && !immediate {
				t.Error("delete not immediate")
			}
		})
	}
}

func TestConvertToTable(t *testing.T) {
	r := NewREST(sessions(), "r1", nil)
	obj, _ := r.List(ctxIn("", "admin"), nil)
	table, err := r.ConvertToTable(context.Background(), obj, nil)
	if err != nil || len(table.Rows) != 3 || len(table.Rows[0].Cells) != len(table.ColumnDefinitions) {
		t.Fatalf("table %+v: %v", table, err)
	}
	if cells := table.Rows[0].Cells; cells[0] != "s1" || cells[1] != "alice" || cells[5] != "sh" || cells[6] != "60s" {
		t.Errorf("row %v", cells)
	}
	if _, err := r.ConvertToTable(context.Background(), &metav1.Status{}, nil); err == nil {
		t.Error("a Status rendered as sessions")
	}
}
