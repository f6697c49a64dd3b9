{{/* Labels of every object: deploy/'s app.kubernetes.io/name, and Helm's own. */}}
{{- define "exec-proxy.labels" -}}
app.kubernetes.io/name: exec-proxy
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/* The pods' labels and the selectors': deploy/'s one label, so that the selector (immutable) is the same whichever installed it. */}}
{{- define "exec-proxy.selectorLabels" -}}
app.kubernetes.io/name: exec-proxy
{{- end }}

{{/* The name of a cluster-scoped object: the prefix, a separator, and the rest. */}}
{{- define "exec-proxy.clusterName" -}}
{{- $root := index . 0 -}}
{{ printf "%s%s%s" $root.Values.clusterNamePrefix (index . 1) (index . 2) | quote }}
{{- end }}

{{- define "exec-proxy.image" -}}
{{- if .Values.image.digest -}}
{{ printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else -}}
{{ printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end -}}
{{- end }}

{{/* The service account's username, as the admission policies and subjects name it. */}}
{{- define "exec-proxy.serviceAccountUser" -}}
{{ printf "system:serviceaccount:%s:exec-proxy" .Values.namespace.name }}
{{- end }}

{{/* Checks of values that the schema cannot express. */}}
{{- define "exec-proxy.validate" -}}
{{- if and .Values.sessionPolicy.rules (not .Values.recording.enabled) -}}
{{- range .Values.sessionPolicy.rules -}}
{{- if hasKey . "recording" -}}
{{- fail (printf "sessionPolicy rule %q sets recording: set recording.enabled too (exec-proxy refuses a policy that records with no --recording-dir)" .name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and (ne .Values.servingCertificate.source "secret") .Values.servingCertificate.caBundle -}}
{{- fail "servingCertificate.caBundle is for source secret: generate and cert-manager fill the caBundle themselves" -}}
{{- end -}}
{{- end }}
