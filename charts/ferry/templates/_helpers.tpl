{{/* Names and labels shared by every object of the chart. */}}

{{- define "ferry.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ferry.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ferry.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ferry.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "ferry.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "ferry.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ferry
{{- end -}}

{{- define "ferry.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ferry.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "ferry.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "ferry.workerImage" -}}
{{- printf "%s:%s" .Values.workerImage.repository (default .Chart.AppVersion .Values.workerImage.tag) -}}
{{- end -}}

{{/*
The rules the operator needs in a namespace it serves; one list, used by the ClusterRole
(all namespaces) or by each namespace's Role. Each rule says why.
*/}}
{{- define "ferry.namespacedRules" -}}
# Watch the Ferry resources; patch them for kopf's finalizer and progress annotations.
- apiGroups: ["ferry.dev"]
  resources: ["synctasks", "connectors", "tasktemplates"]
  verbs: ["get", "list", "watch", "patch"]
# Write the operator's status fields (server-side apply of the status subresource).
# Also what lets it grant each worker get/patch on its own task's status.
- apiGroups: ["ferry.dev"]
  resources: ["synctasks/status", "connectors/status", "tasktemplates/status"]
  verbs: ["get", "patch"]
# Config revisions (immutable ConfigMaps, old ones pruned), the worker Deployment, and the
# worker's ServiceAccount, Role and RoleBinding: created and updated with server-side apply.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["serviceaccounts"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch"]
# Scaling a worker to 0 on delete, so that it checkpoints before the task goes away.
- apiGroups: ["apps"]
  resources: ["deployments/scale"]
  verbs: ["patch"]
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]
  verbs: ["get", "list", "watch", "create", "patch"]
# The worker pods (never created or changed by the operator): watched for status.workerPod
# (CrashLoopBackOff, ImagePullBackOff, OOMKilled, Unschedulable, restarts).
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
# Connector passwords, read to probe the endpoint; watched so that a changed password
# re-probes its Connectors at once (kopf.on.event on secrets).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch"]
# Kubernetes Events on phase changes (kopf posts core/v1 Events).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}

{{/* The worker pods the operator creates (render/objects.py labels them so). */}}
{{- define "ferry.workerSelector" -}}
matchLabels:
  app.kubernetes.io/managed-by: ferry
  app.kubernetes.io/component: worker
matchExpressions:
  - key: ferry.dev/task
    operator: Exists
{{- end -}}

{{/* A duration of the chart's values (30s, 5m, 1h) in seconds, for PromQL. */}}
{{- define "ferry.seconds" -}}
{{- $d := toString . -}}
{{- if hasSuffix "h" $d -}}{{ mul (trimSuffix "h" $d | atoi) 3600 }}
{{- else if hasSuffix "m" $d -}}{{ mul (trimSuffix "m" $d | atoi) 60 }}
{{- else -}}{{ trimSuffix "s" $d | atoi }}
{{- end -}}
{{- end -}}

{{/* Each Ferry worker pod's memory working set over its limit, labelled with its task. */}}
{{- define "ferry.workerMemoryRatio" -}}
(
  max by (namespace, pod) (container_memory_working_set_bytes{container="worker"})
  / on (namespace, pod)
  max by (namespace, pod) (kube_pod_container_resource_limits{container="worker", resource="memory"})
)
* on (namespace, pod) group_left (synctask)
max by (namespace, pod, synctask) (0 * ferry_state + 1)
{{- end -}}
