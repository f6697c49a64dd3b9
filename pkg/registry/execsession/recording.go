package execsession

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/exec-proxy/exec-proxy/pkg/api"
	"github.com/exec-proxy/exec-proxy/pkg/peers"
	"github.com/exec-proxy/exec-proxy/pkg/recording"
)

// RecordingPeers open a recording on the other replicas; *peers.Peers in production.
type RecordingPeers interface {
	Open(ctx context.Context, path string) (io.ReadCloser, []peers.Answer, error)
}

// RecordingREST serves execsessions/recording: a session's recording (asciicast v2), live or
// ended, from whichever replica recorded it. Authorized as get on execsessions/recording.
type RecordingREST struct {
	dir     string // "": this replica records nothing
	replica string
	peers   RecordingPeers
}

var (
	_ rest.Getter          = &RecordingREST{}
	_ rest.StorageMetadata = &RecordingREST{}
)

// NewRecordingREST serves the recordings in dir, and asks peers (nil: none) for the others.
func NewRecordingREST(dir, replica string, peers RecordingPeers) *RecordingREST {
	return &RecordingREST{dir: dir, replica: replica, peers: peers}
}

func (*RecordingREST) New() runtime.Object               { return &api.ExecSession{} }
func (*RecordingREST) Destroy()                          {}
func (*RecordingREST) ProducesMIMETypes(string) []string { return []string{castMIME} }
func (*RecordingREST) ProducesObject(string) interface{} { return "" }
func (r *RecordingREST) notFound(name string) *apierrors.StatusError {
	return apierrors.NewNotFound(schema.GroupResource{Group: api.GroupName, Resource: "execsessions/recording"}, name)
}

const castMIME = "application/x-asciicast"

// sessionID is what a session id looks like (an audit ID); nothing else names a file.
var sessionID = regexp.MustCompile(`^[a-zA-Z0-9-]{1,64}$`)

// Get returns the recording as a stream.
func (r *RecordingREST) Get(ctx context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	if !sessionID.MatchString(name) {
		return nil, r.notFound(name)
	}
	namespace, _ := request.NamespaceFrom(ctx)
	f, err := r.local(namespace, name)
	if err == nil {
		return &castStream{f}, nil
	}
	_, fromPeer := peers.FromContext(ctx)
	if !apierrors.IsNotFound(err) || r.peers == nil || fromPeer {
		return nil, err
	}
	body, answers, err := r.peers.Open(ctx, "/apis/"+api.GroupName+"/"+api.SchemeGroupVersion.Version+
		"/namespaces/"+namespace+"/execsessions/"+name+"/recording")
	if err != nil {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("recording %q is not on exec-proxy replica %s, and the other replicas could not be found: %v", name, r.replica, err))
	}
	if body != nil {
		return &castStream{body}, nil
	}
	if failed := failures(answers); failed != "" {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("recording %q is not on exec-proxy replica %s, and other replicas could not be asked: %s", name, r.replica, failed))
	}
	return nil, r.notFound(name)
}

// local opens the recording in this replica's directory, if it is of a session in namespace.
func (r *RecordingREST) local(namespace, name string) (*os.File, error) {
	if r.dir == "" {
		return nil, r.notFound(name)
	}
	f, err := os.Open(recording.Path(r.dir, name))
	if os.IsNotExist(err) {
		return nil, r.notFound(name)
	}
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("opening recording %s: %w", name, err))
	}
	var header map[string]json.RawMessage
	var meta recording.Meta
	line, err := bufio.NewReader(f).ReadBytes('\n')
	if err != nil || json.Unmarshal(line, &header) != nil || json.Unmarshal(header[recording.HeaderKey], &meta) != nil ||
		meta.Namespace != namespace {
		f.Close() // a recording still waiting for its header, or of another namespace
		return nil, r.notFound(name)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, apierrors.NewInternalError(fmt.Errorf("reading recording %s: %w", name, err))
	}
	return f, nil
}

// failures describes the peers' answers that were neither the recording nor a NotFound.
func failures(answers []peers.Answer) string {
	out := ""
	for _, a := range answers {
		if a.Code == http.StatusNotFound {
			continue
		}
		if out != "" {
			out += "; "
		}
		out += fmt.Sprintf("%s: %v", a.Peer, decode(a, &struct{}{}))
	}
	return out
}

// castStream is a recording on its way to the client (rest.ResourceStreamer).
type castStream struct{ body io.ReadCloser }

var _ rest.ResourceStreamer = &castStream{}

func (s *castStream) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }
func (s *castStream) DeepCopyObject() runtime.Object   { return s }

func (s *castStream) InputStream(context.Context, string, string) (io.ReadCloser, bool, string, error) {
	return s.body, false, castMIME, nil
}
