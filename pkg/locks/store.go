// Package locks holds exec-proxy's user locks (execproxy.dev/v1alpha1 execlocks) and enforces them
// on this replica: each lock is a ConfigMap in exec-proxy's own namespace, written with
// exec-proxy's identity by pkg/registry/execlock and read here through an informer, so that every
// replica refuses a locked user's new sessions and ends its live ones within seconds of a change.
package locks

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/exec-proxy/exec-proxy/pkg/api"
)

const (
	// LabelLock marks the ConfigMaps that hold locks; the informer selects by it.
	LabelLock = "execproxy.dev/execlock"
	// AnnotationName is the lock's name, for whoever looks at the ConfigMaps directly.
	AnnotationName = "execproxy.dev/execlock-name"
	// dataKey holds the lock as JSON.
	dataKey = "execlock"
)

// ConfigMapName is the ConfigMap that holds lock name: a hash, since a lock's name holds the user's
// name, which need not be a valid object name (system:serviceaccount:ns:sa, Alice@example.com).
func ConfigMapName(name string) string {
	sum := sha256.Sum256([]byte(name))
	return "execlock-" + hex.EncodeToString(sum[:10])
}

// ToConfigMap is the ConfigMap in namespace that holds l.
func ToConfigMap(l *api.ExecLock, namespace string) (*corev1.ConfigMap, error) {
	stored := api.ExecLock{ObjectMeta: metav1.ObjectMeta{Name: l.Name}, Spec: l.Spec, Status: l.Status}
	data, err := json.Marshal(&stored)
	if err != nil {
		return nil, fmt.Errorf("encoding execlock %q: %w", l.Name, err)
	}
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: ConfigMapName(l.Name), Namespace: namespace, ResourceVersion: l.ResourceVersion,
			Labels: map[string]string{LabelLock: "true"}, Annotations: map[string]string{AnnotationName: l.Name}},
		Data: map[string]string{dataKey: string(data)},
	}, nil
}

// FromConfigMap is the lock cm holds. Its uid, resourceVersion and creationTimestamp are cm's.
func FromConfigMap(cm *corev1.ConfigMap) (*api.ExecLock, error) {
	l := &api.ExecLock{}
	if err := json.Unmarshal([]byte(cm.Data[dataKey]), l); err != nil {
		return nil, fmt.Errorf("decoding execlock from ConfigMap %s/%s: %w", cm.Namespace, cm.Name, err)
	}
	if l.Name == "" || (l.Spec.User == "") == (l.Spec.Group == "") {
		return nil, fmt.Errorf("ConfigMap %s/%s holds no execlock of one user or group", cm.Namespace, cm.Name)
	}
	l.TypeMeta = metav1.TypeMeta{APIVersion: api.SchemeGroupVersion.String(), Kind: "ExecLock"}
	l.UID, l.ResourceVersion, l.CreationTimestamp = cm.UID, cm.ResourceVersion, cm.CreationTimestamp
	return l, nil
}
