package execsession

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/klog/v2"

	"github.com/exec-proxy/exec-proxy/pkg/api"
	"github.com/exec-proxy/exec-proxy/pkg/peers"
	"github.com/exec-proxy/exec-proxy/pkg/recording"
)

// RecordingPeers open a recording on the other replicas; *peers.Peers in production.
type RecordingPeers interface {
	Open(ctx context.Context, path string) (io.ReadCloser, []peers.Answer, error)
}

// RecordingBucket reads recordings from object storage; *recording.Bucket in production.
type RecordingBucket interface {
	Open(ctx context.Context, id string) (io.ReadCloser, error)
}

// RecordingREST serves execsessions/recording: a session's recording (asciicast v2), live or
// ended, from whichever replica recorded it, else from the bucket (which has it even when that
// replica is gone). Authorized as get on execsessions/recording.
type RecordingREST struct {
	dir     string // "": this replica records nothing
	replica string
	peers   RecordingPeers
	bucket  RecordingBucket // nil: none
}

var (
	_ rest.Getter          = &RecordingREST{}
	_ rest.StorageMetadata = &RecordingREST{}
)

// NewRecordingREST serves the recordings in dir, and asks peers (nil: none), then bucket (nil:
// none) for the others.
func NewRecordingREST(dir, replica string, peers RecordingPeers, bucket RecordingBucket) *RecordingREST {
	return &RecordingREST{dir: dir, replica: replica, peers: peers, bucket: bucket}
}

func (*RecordingREST) New() runtime.Object               { return &api.ExecSession{} }
func (*RecordingREST) Destroy()                          {}
func (*RecordingREST) ProducesMIMETypes(string) []string { return []string{castMIME} }
func (*RecordingREST) ProducesObject(string) interface{} { return "" }
func (r *RecordingREST) notFound(name string) *apierrors.StatusError {
	return apierrors.NewNotFound(schema.GroupResource{Group: api.GroupName, Resource: "execsessions/recording"}, name)
}

const castMIME = "application/x-asciicast"

// Get returns the recording as a stream.
func (r *RecordingREST) Get(ctx context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	if !recording.ValidSessionID(name) {
		return nil, r.notFound(name)
	}
	namespace, _ := request.NamespaceFrom(ctx)
	f, err := r.local(namespace, name)
	if err == nil {
		return &castStream{f}, nil
	}
	_, fromPeer := peers.FromContext(ctx)
	if !apierrors.IsNotFound(err) || fromPeer { // the asking replica reads the bucket itself
		return nil, err
	}
	// The replica that recorded the session serves it while it runs (the bucket lags by up to an
	// upload interval); the bucket, once that replica is gone or the session ended.
	peersFailed := ""
	if r.peers != nil {
		body, answers, err := r.peers.Open(ctx, "/apis/"+api.GroupName+"/"+api.SchemeGroupVersion.Version+
			"/namespaces/"+namespace+"/execsessions/"+name+"/recording")
		switch {
		case err != nil:
			peersFailed = fmt.Sprintf("the other replicas could not be found: %v", err)
		case body != nil:
			return &castStream{body}, nil
		default:
			peersFailed = failures(answers)
		}
	}
	if r.bucket != nil {
		body, err := r.bucket.Open(ctx, name)
		switch {
		case err == nil:
			if body, err := inNamespace(body, namespace); err == nil {
				return &castStream{body}, nil
			}
			// The session's recording, of another namespace: no replica has it in this one.
			return nil, r.notFound(name)
		case !errors.Is(err, recording.ErrNotInBucket):
			klog.FromContext(ctx).Error(err, "Reading a recording from the bucket", "session", name)
			return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("recording %q is not on exec-proxy replica %s, and the recording bucket could not be read", name, r.replica))
		}
	}
	if peersFailed != "" {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("recording %q is not on exec-proxy replica %s, and other replicas could not be asked: %s", name, r.replica, peersFailed))
	}
	return nil, r.notFound(name)
}

// local opens the recording in this replica's directory, if it is of a session in namespace.
func (r *RecordingREST) local(namespace, name string) (io.ReadCloser, error) {
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
	body, err := inNamespace(f, namespace)
	if err != nil {
		return nil, r.notFound(name)
	}
	return body, nil
}

// errNotInNamespace: a recording still waiting for its header, not exec-proxy's, or of another namespace.
var errNotInNamespace = errors.New("not a recording of a session in the namespace")

// inNamespace reads body's header and gives body back whole if its recording is of a session in
// namespace; else closes it.
func inNamespace(body io.ReadCloser, namespace string) (io.ReadCloser, error) {
	var header map[string]json.RawMessage
	var meta recording.Meta
	br := bufio.NewReader(body)
	line, err := br.ReadBytes('\n')
	if err != nil || json.Unmarshal(line, &header) != nil || json.Unmarshal(header[recording.HeaderKey], &meta) != nil ||
		meta.Namespace != namespace {
		body.Close()
		return nil, errNotInNamespace
	}
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(line), br), body}, nil
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
