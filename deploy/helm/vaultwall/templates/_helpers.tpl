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

{{/* The directory the vaults values are mounted in (vaults.dir). */}}
{{- define "vaultwall.vaultsDir" -}}
/etc/vaultwall/vaults.d
{{- end -}}

{{/* vaultwall.vaultFile: the file name of one entry of the vaults values,
its key, with .yaml added when it has none of vaultwall's extensions (.yaml,
.yml, .json: vaultwall ignores other files). */}}
{{- define "vaultwall.vaultFile" -}}
{{- if regexMatch "(?i)\\.(ya?ml|json)$" . -}}
{{- . -}}
{{- else -}}
{{- printf "%s.yaml" . -}}
{{- end -}}
{{- end -}}

{{/* vaultwall.vaultDoc: one vault's file, from (list fileName value): a
string as it is (an az keyvault show document, an ARM template), a mapping
as YAML, or as JSON in a .json file. */}}
{{- define "vaultwall.vaultDoc" -}}
{{- $file := index . 0 -}}
{{- $doc := index . 1 -}}
{{- if kindIs "string" $doc -}}
{{- $doc -}}
{{- else if regexMatch "(?i)\\.json$" $file -}}
{{- toPrettyJson $doc -}}
{{- else -}}
{{- toYaml $doc -}}
{{- end -}}
{{- end -}}

{{/* vaultwall.checkVaults fails the render when the vaults values could not
work: a file name vaultwall would skip or Kubernetes would refuse, two
entries for one file, an empty entry, or a main config that still holds a
vault of its own or points vaults.dir elsewhere. */}}
{{- define "vaultwall.checkVaults" -}}
{{- $files := dict -}}
{{- range $name, $doc := .Values.vaults -}}
{{- if not (regexMatch "^[A-Za-z0-9][-._A-Za-z0-9]*$" $name) -}}
{{- fail (printf "vaults.%s: a vault's file name must start with a letter or digit and hold only letters, digits, '-', '_' and '.' (a ConfigMap key; vaultwall skips hidden files)" $name) -}}
{{- end -}}
{{- $file := include "vaultwall.vaultFile" $name -}}
{{- if gt (len $file) 200 -}}
{{- fail (printf "vaults.%s: file name longer than 200 characters" $name) -}}
{{- end -}}
{{- if hasKey $files $file -}}
{{- fail (printf "vaults.%s and vaults.%s are both the file %s" (get $files $file) $name $file) -}}
{{- end -}}
{{- $_ := set $files $file $name -}}
{{- if not $doc -}}
{{- fail (printf "vaults.%s is empty: give the vault's document (vault, properties, network)" $name) -}}
{{- end -}}
{{- if not (or (kindIs "string" $doc) (kindIs "map" $doc)) -}}
{{- fail (printf "vaults.%s: want the vault's document as a mapping or a string, got a %s" $name (kindOf $doc)) -}}
{{- end -}}
{{- end -}}
{{- $set := list -}}
{{- range $k := list "vault" "properties" "network" -}}
{{- if hasKey $.Values.config $k -}}
{{- $set = append $set (printf "config.%s" $k) -}}
{{- end -}}
{{- end -}}
{{- if $set -}}
{{- fail (printf "vaults is set, so each vault's vault, properties and network belong in its own entry of vaults, and the main config holds only process-wide sections; %s still set: set them to null (config: {vault: null, properties: null, network: null}) to drop the chart's single-vault defaults" (join ", " $set)) -}}
{{- end -}}
{{- $dir := dig "vaults" "dir" "" .Values.config -}}
{{- if and $dir (ne $dir (include "vaultwall.vaultsDir" .)) -}}
{{- fail (printf "vaults is set, so the chart mounts the vaults at %s and sets config.vaults.dir itself; config.vaults.dir is %q: leave it unset" (include "vaultwall.vaultsDir" .) $dir) -}}
{{- end -}}
{{- end -}}

{{/* vault.yaml: the config values, with the server addresses on the chart's
ports, policy.dir on the mounted policies when there are any, and
vaults.dir on the mounted vault files when the vaults values are set. */}}
{{- define "vaultwall.config" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- if .Values.vaults -}}
{{- include "vaultwall.checkVaults" . -}}
{{- $vaults := default (dict) $cfg.vaults -}}
{{- $_ := set $vaults "dir" (include "vaultwall.vaultsDir" .) -}}
{{- $_ := set $cfg "vaults" $vaults -}}
{{- end -}}
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
