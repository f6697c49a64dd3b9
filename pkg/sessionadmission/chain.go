package sessionadmission

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/admission/plugin/policy/validating"
	mutatingwebhook "k8s.io/apiserver/pkg/admission/plugin/webhook/mutating"
	validatingwebhook "k8s.io/apiserver/pkg/admission/plugin/webhook/validating"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/component-base/featuregate"
)

// NewChain builds k8s.io/apiserver's MutatingAdmissionWebhook, ValidatingAdmissionPolicy and
// ValidatingAdmissionWebhook plugins, as kube-apiserver configures them, on g (whose authorizer
// the policies' `authorizer` uses); g's own API gets them too, as an aggregated API server's
// should. configFile is kube-apiserver's --admission-control-config-file format (the webhooks'
// kubeconfig for client credentials); empty: none. factory feeds the plugins and must be started;
// build it with InformerOptions.
func NewChain(g *genericapiserver.Config, factory informers.SharedInformerFactory, client kubernetes.Interface,
	dyn dynamic.Interface, gate featuregate.FeatureGate, configFile string) (admission.Interface, error) {
	opts := genericoptions.NewAdmissionOptions()
	opts.RecommendedPluginOrder = []string{mutatingwebhook.PluginName, validating.PluginName, validatingwebhook.PluginName}
	opts.ConfigFile = configFile
	if err := opts.ApplyTo(g, factory, client, dyn, gate, g.EffectiveVersion); err != nil {
		return nil, fmt.Errorf("admission plugins: %w", err)
	}
	return g.AdmissionControl, nil
}

// InformerOptions leave out the admission objects labelled DirectPathOnlyLabel=true.
func InformerOptions() informers.SharedInformerOption {
	return informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = DirectPathOnlyLabel + "!=true" })
}
