{{- define "vaultwall.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "vaultwall.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "vaultwall.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vaultwall.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "vaultwall.labels" -}}
{{ include "vaultwall.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "vaultwall.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "vaultwall.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "vaultwall.image" -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}

{{/* vault.yaml: the config values, with the server addresses on the chart's
ports and policy.dir on the mounted policies when there are any. */}}
{{- define "vaultwall.config" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $server := default (dict) $cfg.server -}}
{{- $_ := set $server "grpcAddr" (printf ":%d" (int .Values.service.grpcPort)) -}}
{{- $_ := set $server "httpAddr" (printf ":%d" (int .Values.service.httpPort)) -}}
{{- $_ := set $cfg "server" $server -}}
{{- if .Values.policies -}}
{{- $policy := default (dict) $cfg.policy -}}
{{- if not $policy.dir -}}
{{- $_ := set $policy "dir" "/etc/vaultwall/policy" -}}
{{- end -}}
{{- $_ := set $cfg "policy" $policy -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}
