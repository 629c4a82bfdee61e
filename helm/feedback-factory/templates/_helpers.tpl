{{/*
Chart name, truncated to a DNS label.
*/}}
{{- define "feedback-factory.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name (release + chart unless the release name already contains it).
Truncated to 52 characters so suffixes such as "-training-job" keep names within 63.
*/}}
{{- define "feedback-factory.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "feedback-factory.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "feedback-factory.labels" -}}
helm.sh/chart: {{ include "feedback-factory.chart" . }}
{{ include "feedback-factory.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: feedback-factory
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels.
*/}}
{{- define "feedback-factory.selectorLabels" -}}
app.kubernetes.io/name: {{ include "feedback-factory.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels and selector labels of one component: include with (dict "ctx" $ "component" "api").
*/}}
{{- define "feedback-factory.componentLabels" -}}
{{ include "feedback-factory.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "feedback-factory.componentSelectorLabels" -}}
{{ include "feedback-factory.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
ServiceAccount of the API and drift pods.
*/}}
{{- define "feedback-factory.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "feedback-factory.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Images.
*/}}
{{- define "feedback-factory.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag | toString) }}
{{- end }}

{{- define "feedback-factory.trainingImage" -}}
{{- printf "%s:%s" .Values.training.image.repository (default .Chart.AppVersion .Values.training.image.tag | toString) }}
{{- end }}

{{/*
Names of the chart's ConfigMaps and Secret.
*/}}
{{- define "feedback-factory.configMapName" -}}
{{- printf "%s-config" (include "feedback-factory.fullname" .) }}
{{- end }}

{{- define "feedback-factory.secretName" -}}
{{- printf "%s-secrets" (include "feedback-factory.fullname" .) }}
{{- end }}

{{- define "feedback-factory.trainingJobConfigMapName" -}}
{{- printf "%s-training-job" (include "feedback-factory.fullname" .) }}
{{- end }}

{{- define "feedback-factory.dataClaimName" -}}
{{- default (printf "%s-data" (include "feedback-factory.fullname" .)) .Values.persistence.existingClaim }}
{{- end }}

{{/*
Where the training Job template is mounted (FF_K8S_JOB_TEMPLATE = dir + "/" + file).
*/}}
{{- define "feedback-factory.trainingJobDir" -}}
/etc/feedback-factory
{{- end }}

{{- define "feedback-factory.trainingJobFile" -}}
training-job.yaml
{{- end }}

{{/*
Does the chart create its own Secret? Yes unless every secret group uses an existingSecret.
Returns "true" or "".
*/}}
{{- define "feedback-factory.createSecret" -}}
{{- if or (not .Values.database.existingSecret) (not .Values.alerts.existingSecret) -}}
true
{{- end }}
{{- end }}

{{/*
A value as an environment-variable string. Helm reads every YAML number as float64, which would
print 8388608 as "8.388608e+06": whole numbers are printed as integers.
*/}}
{{- define "feedback-factory.envValue" -}}
{{- if and (kindIs "float64" .) (eq (floor .) .) -}}
{{- int64 . | toString -}}
{{- else -}}
{{- toString . -}}
{{- end -}}
{{- end }}

{{/*
Fail rendering on inconsistent values, above all a consumer group with more members than the
ingest topics have partitions.
*/}}
{{- define "feedback-factory.validate" -}}
{{- if and (not .Values.database.existingSecret) (not .Values.database.url) }}
{{- fail "set database.url or database.existingSecret: every component needs FF_DATABASE_URL" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- fail "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" }}
{{- end }}
{{- $members := mul (int .Values.consumer.replicas) (max 1 (int .Values.consumer.processes)) }}
{{- if and .Values.consumer.enabled (gt $members (int .Values.kafka.partitions)) }}
{{- fail (printf "consumer.replicas x consumer.processes (%d) must not exceed kafka.partitions (%d): a Kafka consumer group member without a partition sits idle. Lower them or add partitions to the ingest topics and raise kafka.partitions." $members (int .Values.kafka.partitions)) }}
{{- end }}
{{- end }}

{{/*
Secret-backed FF_* variables, as an env list (the rest comes from the ConfigMap via envFrom).
*/}}
{{- define "feedback-factory.secretEnv" -}}
{{- $chartSecret := include "feedback-factory.secretName" . -}}
- name: FF_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ default $chartSecret .Values.database.existingSecret }}
      key: {{ ternary .Values.database.existingSecretKey "database-url" (not (empty .Values.database.existingSecret)) }}
{{- if .Values.kafka.existingSecret }}
- name: FF_KAFKA_BOOTSTRAP_SERVERS
  valueFrom:
    secretKeyRef:
      name: {{ .Values.kafka.existingSecret }}
      key: {{ .Values.kafka.existingSecretKey }}
{{- end }}
{{- $alerts := .Values.alerts }}
{{- $keys := dict "FF_WEBHOOK_URL" "webhook-url" "FF_WEBHOOK_SECRET" "webhook-secret" "FF_SLACK_WEBHOOK_URL" "slack-webhook-url" }}
{{- if $alerts.existingSecret }}
{{- $keys = dict "FF_WEBHOOK_URL" $alerts.existingSecretKeys.webhookUrl "FF_WEBHOOK_SECRET" $alerts.existingSecretKeys.webhookSecret "FF_SLACK_WEBHOOK_URL" $alerts.existingSecretKeys.slackWebhookUrl }}
{{- end }}
{{- range $envName := list "FF_WEBHOOK_URL" "FF_WEBHOOK_SECRET" "FF_SLACK_WEBHOOK_URL" }}
- name: {{ $envName }}
  valueFrom:
    secretKeyRef:
      name: {{ default $chartSecret $alerts.existingSecret }}
      key: {{ get $keys $envName }}
{{- end }}
{{- end }}

{{/*
Environment of every service container: the ConfigMap (envFrom) plus the Secret references.
$HOME points at the writable /tmp because the root filesystem is read-only.
*/}}
{{- define "feedback-factory.envFrom" -}}
- configMapRef:
    name: {{ include "feedback-factory.configMapName" . }}
{{- end }}

{{- define "feedback-factory.env" -}}
{{ include "feedback-factory.secretEnv" . }}
- name: HOME
  value: /tmp
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Volumes shared by the service pods: /tmp, the data directory, and (include with jobTemplate=true)
the training Job template.
*/}}
{{- define "feedback-factory.volumes" -}}
- name: tmp
  emptyDir: {}
- name: data
{{- if .ctx.Values.persistence.enabled }}
  persistentVolumeClaim:
    claimName: {{ include "feedback-factory.dataClaimName" .ctx }}
{{- else }}
  emptyDir: {}
{{- end }}
{{- if .jobTemplate }}
- name: training-job-template
  configMap:
    name: {{ include "feedback-factory.trainingJobConfigMapName" .ctx }}
{{- end }}
{{- end }}

{{- define "feedback-factory.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: data
  mountPath: {{ .ctx.Values.persistence.mountPath }}
{{- if .jobTemplate }}
- name: training-job-template
  mountPath: {{ include "feedback-factory.trainingJobDir" .ctx }}
  readOnly: true
{{- end }}
{{- end }}

{{/*
Pod-level fields shared by every pod of the chart.
*/}}
{{- define "feedback-factory.podCommon" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
Scheduling fields of one component: include with (dict "values" .Values.api).
*/}}
{{- define "feedback-factory.scheduling" -}}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
