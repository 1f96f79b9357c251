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
  resources: [services]
  verbs: [get, create, patch]
# watch: each route's Role lets its proxies get and watch their ConfigMap, and the API only lets the
# operator grant what it holds itself
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, watch, create, patch]
# per route: the proxies' ServiceAccount, and the Role + RoleBinding limited to that route's ConfigMap
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [get, create]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [get, create, patch]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, create, patch]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, create, patch]
# llmroute's EventRecorder (events.k8s.io/v1, a series patched onto a repeat); kopf posts none (posting off)
- apiGroups: [events.k8s.io]
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

{{/* Annotations of the uninstall hook's objects: pre-delete, ordered by weight, removed once it succeeded. */}}
{{- define "llmroute.uninstallHook" -}}
helm.sh/hook: pre-delete
helm.sh/hook-weight: {{ .weight | quote }}
helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
{{- end -}}

{{/* prometheusAuth.headers as the operator reads LLMROUTE_PROMETHEUS_HEADERS: Name=value pairs, comma-separated */}}
{{- define "llmroute.promHeaders" -}}
{{- $pairs := list -}}
{{- range $name, $value := . -}}
{{- $pairs = append $pairs (printf "%s=%s" $name $value) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}
