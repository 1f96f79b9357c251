{{- define "llmroute.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "llmroute.labels" -}}
app.kubernetes.io/name: llmroute
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: llmroute
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "llmroute.selector" -}}
app.kubernetes.io/name: llmroute
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "llmroute.serviceAccountName" -}}
{{- default (include "llmroute.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* The rules the operator needs in every namespace it reconciles LLMRoutes in: nothing more. */}}
{{- define "llmroute.namespacedRules" -}}
- apiGroups: [llmroute.io]
  resources: [llmroutes]
  verbs: [get, list, watch, patch]
- apiGroups: [llmroute.io]
  resources: [llmroutes/status]
  verbs: [get, patch]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, create, patch]
- apiGroups: [apps]
  resources: [deployments/scale]
  verbs: [get, patch]
- apiGroups: [""]
  resources: [configmaps, services]
  verbs: [get, create, patch]
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [list]
- apiGroups: [keda.sh]
  resources: [scaledobjects]
  verbs: [list]
{{- end -}}

{{/* registry/repository, then @digest if set, else :tag (default: the chart's appVersion) */}}
{{- define "llmroute.image" -}}
{{- $repo := .Values.image.repository -}}
{{- if .Values.image.registry }}{{ $repo = printf "%s/%s" .Values.image.registry $repo }}{{ end -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" $repo .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}
