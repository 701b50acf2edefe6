{{/* Names and labels shared by every template of the chart (monitoring templates included). */}}

{{- define "examsync.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "examsync.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "examsync.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "examsync.selectorLabels" -}}
app.kubernetes.io/name: {{ include "examsync.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "examsync.labels" -}}
helm.sh/chart: {{ include "examsync.chart" . }}
{{ include "examsync.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: examsync
{{- end }}

{{- define "examsync.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "examsync.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "examsync.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* kopf peering is on with more than one replica, or when asked for: "true" or "". */}}
{{- define "examsync.peering" -}}
{{- if or .Values.peering.enabled (gt (int .Values.replicas) 1) }}true{{ end }}
{{- end }}

{{- define "examsync.peeringName" -}}
{{- default (include "examsync.fullname" .) .Values.peering.name }}
{{- end }}

{{/* Arguments of `examsync run`: which namespaces, metrics, liveness, peering, log level. */}}
{{- define "examsync.args" -}}
- run
{{- if .Values.watchNamespaces }}
{{- range .Values.watchNamespaces }}
- -n
- {{ . | quote }}
{{- end }}
{{- else }}
- -A
{{- end }}
- --metrics-port={{ .Values.metrics.port }}
- --liveness=http://0.0.0.0:{{ .Values.liveness.port }}/healthz
- --log-level={{ .Values.logLevel }}
{{- if include "examsync.peering" . }}
- --peering={{ include "examsync.peeringName" . }}
{{- else }}
- --standalone
{{- end }}
{{- range .Values.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}

{{/*
The Secret holding the audit store's URL (empty: no audit store): an existing one, or the chart's
own when auditStore.url is set.
*/}}
{{- define "examsync.auditStoreSecret" -}}
{{- $store := .Values.auditStore | default dict -}}
{{- if and $store.url $store.existingSecret -}}
{{- fail "auditStore: set url or existingSecret, not both" -}}
{{- end -}}
{{- if $store.existingSecret -}}
{{- $store.existingSecret -}}
{{- else if $store.url -}}
{{- printf "%s-audit-store" (include "examsync.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end }}

{{- define "examsync.auditStoreKey" -}}
{{- if .Values.auditStore.existingSecret -}}
{{- .Values.auditStore.existingSecretKey | default "url" -}}
{{- else -}}
url
{{- end -}}
{{- end }}
