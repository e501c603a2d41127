{{- define "zsb.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "zsb.fullname" -}}
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

{{- define "zsb.selectorLabels" -}}
app.kubernetes.io/name: {{ include "zsb.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "zsb.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "zsb.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "zsb.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "zsb.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "zsb.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "zsb.policiesConfigMap" -}}
{{- if .Values.policies.existingConfigMap }}
{{- .Values.policies.existingConfigMap }}
{{- else if .Values.policies.files }}
{{- printf "%s-policies" (include "zsb.fullname" .) }}
{{- end }}
{{- end }}

{{- define "zsb.scheme" -}}
{{- if .Values.tls.enabled }}HTTPS{{ else }}HTTP{{ end }}
{{- end }}

{{/*
The broker's configuration: the user's `config` with what the chart mounts merged over it.
*/}}
{{- define "zsb.config" -}}
{{- $auth := .Values.openbao.auth }}
{{- if not (has $auth.method (list "token" "approle" "kubernetes")) }}
{{- fail "openbao.auth.method must be token, approle or kubernetes" }}
{{- end }}
{{- $c := deepCopy .Values.config }}
{{- $listen := dict "host" "0.0.0.0" "port" (int .Values.containerPort) }}
{{- if .Values.tls.enabled }}
{{- if not .Values.tls.secretName }}{{ fail "tls.enabled needs tls.secretName" }}{{ end }}
{{- $_ := set $listen "tls" (dict "certFile" "/etc/zsb/tls/tls.crt" "keyFile" "/etc/zsb/tls/tls.key") }}
{{- end }}
{{- $_ := set $c "listen" $listen }}
{{- $bao := default (dict) $c.openbao }}
{{- if eq $auth.method "kubernetes" }}
{{- $k := $auth.kubernetes }}
{{- if not $k.role }}{{ fail "openbao.auth.kubernetes.role is required" }}{{ end }}
{{- $_ := set $bao "auth" (dict "method" "kubernetes" "role" $k.role "mount" $k.mount "jwtFile" "/var/run/secrets/zsb/openbao/token") }}
{{- else if $auth.tokenFile }}
{{- if ne $auth.method "token" }}{{ fail "openbao.auth.tokenFile needs method token" }}{{ end }}
{{- $_ := set $bao "auth" (dict "method" "token" "tokenFile" $auth.tokenFile) }}
{{- else }}
{{- if not $auth.existingSecret }}{{ fail "openbao.auth.existingSecret (or tokenFile) is required" }}{{ end }}
{{- if eq $auth.method "token" }}
{{- $_ := set $bao "auth" (dict "method" "token" "tokenFile" "/etc/zsb/openbao-credential/token") }}
{{- else }}
{{- $_ := set $bao "auth" (dict "method" "approle" "roleIdFile" "/etc/zsb/openbao-credential/role-id" "secretIdFile" "/etc/zsb/openbao-credential/secret-id" "mount" $auth.approleMount) }}
{{- end }}
{{- end }}
{{- if .Values.openbao.ca.name }}
{{- $_ := set $bao "tls" (merge (dict "caFile" "/etc/zsb/openbao-ca/ca.crt") (default (dict) $bao.tls)) }}
{{- end }}
{{- $_ := set $c "openbao" $bao }}
{{- if (include "zsb.policiesConfigMap" .) }}
{{- $_ := set $c "policies" "/etc/zsb/policies" }}
{{- else }}
{{- $_ := set $c "policies" "/app/policies" }}
{{- end }}
{{- if .Values.audit.hmacKeySecret }}
{{- $_ := set $c "audit" (dict "stdout" true "hmacKeyFile" "/etc/zsb/audit/hmac-key") }}
{{- end }}
{{- if .Values.backup.enabled }}
{{- $b := .Values.backup }}
{{- if not $b.persistentVolumeClaim }}{{ fail "backup.enabled needs backup.persistentVolumeClaim" }}{{ end }}
{{- if not $b.sealKeySecret }}{{ fail "backup.enabled needs backup.sealKeySecret" }}{{ end }}
{{- $verify := dict "sealKeyFile" "/etc/zsb/seal/seal-key" "sealKeyId" $b.sealKeyId "baoBinary" "/opt/bao/bao" "scratchDir" "/var/tmp/zsb-verify" }}
{{- if $b.verifyTokenSecret }}
{{- $_ := set $verify "tokenFile" "/etc/zsb/backup-verify/token" }}
{{- end }}
{{- /* The chart's keys win; others of config.backup (hook, lockTtlSeconds, …) are kept. */}}
{{- $_ := set $c "backup" (merge (dict "enabled" false "directory" "/var/backups/zsb" "every" $b.every "retention" $b.retention "verify" $verify) (default (dict) $c.backup)) }}
{{- end }}
{{- toYaml $c }}
{{- end }}

{{/* Volumes shared by the broker pods and the backup job. */}}
{{- define "zsb.volumes" -}}
- name: config
  configMap:
    name: {{ include "zsb.fullname" . }}-config
{{- if (include "zsb.policiesConfigMap" .) }}
- name: policies
  configMap:
    name: {{ include "zsb.policiesConfigMap" . }}
{{- end }}
{{- if eq .Values.openbao.auth.method "kubernetes" }}
# A service account token for OpenBao alone (its audience), rotated by the kubelet; the
# pod's own API token stays unmounted.
- name: openbao-sa-token
  projected:
    defaultMode: 256  # 0400 (JSON and YAML 1.2 have no octal)
    sources:
      - serviceAccountToken:
          audience: {{ .Values.openbao.auth.kubernetes.audience }}
          expirationSeconds: {{ int .Values.openbao.auth.kubernetes.expirationSeconds }}
          path: token
{{- else if .Values.openbao.auth.existingSecret }}
{{- if not .Values.openbao.auth.tokenFile }}
- name: openbao-credential
  secret:
    secretName: {{ .Values.openbao.auth.existingSecret }}
    defaultMode: 256  # 0400 (JSON and YAML 1.2 have no octal)
{{- end }}
{{- end }}
{{- if .Values.openbao.ca.name }}
- name: openbao-ca
  {{- if eq .Values.openbao.ca.kind "ConfigMap" }}
  configMap:
    name: {{ .Values.openbao.ca.name }}
  {{- else }}
  secret:
    secretName: {{ .Values.openbao.ca.name }}
  {{- end }}
{{- end }}
{{- if .Values.audit.hmacKeySecret }}
- name: audit-key
  secret:
    secretName: {{ .Values.audit.hmacKeySecret }}
    defaultMode: 256  # 0400 (JSON and YAML 1.2 have no octal)
{{- end }}
{{- end }}

{{- define "zsb.volumeMounts" -}}
- name: config
  mountPath: /etc/zsb/config.yaml
  subPath: config.yaml
  readOnly: true
{{- if (include "zsb.policiesConfigMap" .) }}
# Not a subPath mount: only a whole-volume mount receives the kubelet's updates.
- name: policies
  mountPath: /etc/zsb/policies
  readOnly: true
{{- end }}
{{- if eq .Values.openbao.auth.method "kubernetes" }}
- name: openbao-sa-token
  mountPath: /var/run/secrets/zsb/openbao
  readOnly: true
{{- else if .Values.openbao.auth.existingSecret }}
{{- if not .Values.openbao.auth.tokenFile }}
- name: openbao-credential
  mountPath: /etc/zsb/openbao-credential
  readOnly: true
{{- end }}
{{- end }}
{{- if .Values.openbao.ca.name }}
- name: openbao-ca
  mountPath: /etc/zsb/openbao-ca
  readOnly: true
{{- end }}
{{- if .Values.audit.hmacKeySecret }}
- name: audit-key
  mountPath: /etc/zsb/audit
  readOnly: true
{{- end }}
{{- end }}
