{{/*
Chart name, truncated to 63 characters (a DNS label).
*/}}
{{- define "llm-router.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name; the release name alone when it already contains the chart name.
Truncated to 54 characters so that suffixes such as "-headless" still fit in 63.
*/}}
{{- define "llm-router.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 54 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 54 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 54 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart label value: name-version.
*/}}
{{- define "llm-router.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels: stable for the life of the release (Deployment selectors are immutable).
*/}}
{{- define "llm-router.selectorLabels" -}}
app.kubernetes.io/name: {{ include "llm-router.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Common labels of every resource.
*/}}
{{- define "llm-router.labels" -}}
helm.sh/chart: {{ include "llm-router.chart" . }}
{{ include "llm-router.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/component: router
app.kubernetes.io/part-of: llm-router
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
ServiceAccount name.
*/}}
{{- define "llm-router.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "llm-router.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Container image reference: the digest wins over the tag; the tag defaults to appVersion.
*/}}
{{- define "llm-router.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
Name of the ConfigMap holding the routing config.
*/}}
{{- define "llm-router.configMapName" -}}
{{- printf "%s-config" (include "llm-router.fullname" .) }}
{{- end }}

{{/*
The routing config file as rendered into the ConfigMap (one source for the data and its checksum).
*/}}
{{- define "llm-router.configYaml" -}}
{{- toYaml .Values.config }}
{{- end }}

{{/*
Where the routing config is mounted.
*/}}
{{- define "llm-router.configDir" -}}
/etc/llm-router
{{- end }}

{{/*
Checks of values that the JSON schema cannot express; fails the render with one sentence.
*/}}
{{- define "llm-router.validate" -}}
{{- $drain := add .Values.preStopSleepSeconds .Values.server.graceSeconds }}
{{- if le (int .Values.terminationGracePeriodSeconds) (int $drain) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed preStopSleepSeconds + server.graceSeconds (%d) so that the server drains before SIGKILL" (int .Values.terminationGracePeriodSeconds) (int $drain)) }}
{{- end }}
{{- if .Values.postgresql.enabled }}
{{- if not .Values.postgresql.existingSecret }}
{{- fail "postgresql.enabled needs postgresql.existingSecret: the name of a Secret holding the database password" }}
{{- end }}
{{- $url := "" }}
{{- with .Values.config.storage }}{{ $url = .url | default "" }}{{ end }}
{{- if not (regexMatch "^postgres(ql)?://" $url) }}
{{- fail "postgresql.enabled needs config.storage.url set to a postgresql:// DSN (without the password)" }}
{{- end }}
{{- if regexMatch "^postgres(ql)?://[^/@]*:[^/@]*@" $url }}
{{- fail "config.storage.url must not contain the password: it lands in a ConfigMap; the chart sets PGPASSWORD from postgresql.existingSecret" }}
{{- end }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- fail "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" }}
{{- end }}
{{- with .Values.config.server }}
{{- if and (hasKey . "metrics_port") (ne (int .metrics_port) (int $.Values.server.metricsPort)) }}
{{- fail "config.server.metrics_port and server.metricsPort differ: the metrics port would not be exposed" }}
{{- end }}
{{- if and (hasKey . "grace_s") (gt (float64 .grace_s) (float64 $.Values.server.graceSeconds)) }}
{{- fail "config.server.grace_s exceeds server.graceSeconds: raise server.graceSeconds to match" }}
{{- end }}
{{- end }}
{{- end }}
