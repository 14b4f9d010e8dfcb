{{/* Names and labels shared by the templates. */}}
{{- define "eureka.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "eureka.operator.name" -}}
{{- printf "%s-operator" (include "eureka.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "eureka.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "eureka.operator.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "eureka.operator.serviceAccount" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "eureka.operator.name" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "eureka.operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The rules the operator needs in the namespaces it serves (least privilege). */}}
{{- define "eureka.operator.rules" -}}
# RLJobs: watch them, record kopf's progress annotations, write their status.
- apiGroups: [eureka.dev]
  resources: [rljobs]
  verbs: [get, list, watch, patch]
- apiGroups: [eureka.dev]
  resources: [rljobs/status]
  verbs: [get, patch]
# Children name their RLJob with blockOwnerDeletion: under the OwnerReferencesPermissionEnforcement
# admission plugin (on by default in OpenShift) that takes update on the owner's finalizers.
- apiGroups: [eureka.dev]
  resources: [rljobs/finalizers]
  verbs: [update]
# The children of each RLJob (no delete: owner references do that).
- apiGroups: [ray.io]
  resources: [rayjobs]
  verbs: [get, list, watch, create, patch]
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, create, patch]
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [get, create]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [get, create]
# Pod problems (unschedulable GPUs, image pulls, crash loops) of the jobs' Ray pods.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch]
# Suspending a job Kueue admitted: deactivate its Workload (Kueue would undo a RayJob suspend).
- apiGroups: [kueue.x-k8s.io]
  resources: [workloads]
  verbs: [get, list, patch]
# Volume problems (FailedMount, Multi-Attach) exist only as Events on the pods.
- apiGroups: [""]
  resources: [events]
  verbs: [list, watch]
{{- end -}}
