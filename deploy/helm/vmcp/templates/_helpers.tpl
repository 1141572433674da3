{{/* The labels that select vmcp's pods. */}}
{{- define "vmcp.selector" -}}
app.kubernetes.io/name: vmcp
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The labels of every object. */}}
{{- define "vmcp.labels" -}}
app.kubernetes.io/part-of: vmcp
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end }}

{{/* The address vmcp's config reads as ${REDIS_ADDRESS}. */}}
{{- define "vmcp.redisAddress" -}}
{{- if .Values.redis.enabled -}}
{{ .Release.Name }}-redis:6379
{{- else -}}
{{ required "redis.address: your Redis's host:port, since redis.enabled is false" .Values.redis.address }}
{{- end -}}
{{- end }}
