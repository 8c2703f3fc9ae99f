{{/*
Names, labels and the table of CLS services. The table is the chart's one description of
what each service is: its proto package (the Ingress path), its internal service (readiness
probe) and the services it calls (its *_INTERNAL_URL variables and the NetworkPolicy rules
that let it reach them).
*/}}

{{- define "cls.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "cls.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "cls.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The services, keyed by name. */}}
{{- define "cls.serviceTable" -}}
pool:
  valuesKey: pool
  package: cls.pool.v1
  internalService: cls.pool.v1.PoolAdminService
  callees: [allocation, notification]
allocation:
  valuesKey: allocation
  package: cls.allocation.v1
  internalService: cls.allocation.v1.AllocationAdminService
  callees: [notification]
server-identity:
  valuesKey: serverIdentity
  package: cls.server_identity.v1
  internalService: cls.server_identity.v1.ServerIdentityAdminService
  callees: [pool, allocation, notification]
notification:
  valuesKey: notification
  package: cls.notification.v1
  internalService: cls.notification.v1.NotificationAdminService
  callees: []
{{- end -}}

{{- define "cls.services" -}}
{{- include "cls.serviceTable" . | fromYaml | toJson -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "cls.labels" -}}
helm.sh/chart: {{ include "cls.chart" . }}
{{ include "cls.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: cls
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels that select every pod of the release. */}}
{{- define "cls.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cls.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Selector labels of one component. Context: dict "root" $ "component" name. */}}
{{- define "cls.componentSelectorLabels" -}}
{{ include "cls.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* All labels of one component. Context: dict "root" $ "component" name. */}}
{{- define "cls.componentLabels" -}}
{{ include "cls.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Name of a service's objects, e.g. cls-allocation. Context: dict "root" $ "svc" name. */}}
{{- define "cls.serviceName" -}}
{{- printf "%s-%s" (include "cls.fullname" .root) .svc -}}
{{- end -}}

{{/* A service's block of values. Context: dict "root" $ "svc" name. */}}
{{- define "cls.serviceValues" -}}
{{- $table := include "cls.services" .root | fromJson -}}
{{- index .root.Values (index $table .svc).valuesKey | toJson -}}
{{- end -}}

{{/* In-cluster URL of a service's internal gRPC port. Context: dict "root" $ "svc" name. */}}
{{- define "cls.internalUrl" -}}
{{- printf "http://%s.%s.svc:%v" (include "cls.serviceName" .) .root.Release.Namespace .root.Values.ports.internal -}}
{{- end -}}

{{- define "cls.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* Secrets: the existing Secret's name when given, else the one the chart makes. */}}
{{- define "cls.databaseSecretName" -}}
{{- default (printf "%s-database" (include "cls.fullname" .)) .Values.database.existingSecret -}}
{{- end -}}
{{- define "cls.databaseSecretKey" -}}
{{- if .Values.database.existingSecret }}{{ .Values.database.existingSecretKey }}{{ else }}database-url{{ end -}}
{{- end -}}

{{/* "true" when REDIS_URL is configured. */}}
{{- define "cls.redisEnabled" -}}
{{- if or .Values.redis.existingSecret .Values.redis.url }}true{{ end -}}
{{- end -}}
{{- define "cls.redisSecretName" -}}
{{- default (printf "%s-redis" (include "cls.fullname" .)) .Values.redis.existingSecret -}}
{{- end -}}
{{- define "cls.redisSecretKey" -}}
{{- if .Values.redis.existingSecret }}{{ .Values.redis.existingSecretKey }}{{ else }}redis-url{{ end -}}
{{- end -}}

{{- define "cls.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "cls.fullname" .)) .Values.tls.existingSecret -}}
{{- end -}}

{{- define "cls.leaseSecretName" -}}
{{- default (printf "%s-lease-signing-key" (include "cls.fullname" .)) .Values.secrets.leaseSigningKey.existingSecret -}}
{{- end -}}
{{- define "cls.leaseSecretKey" -}}
{{- if .Values.secrets.leaseSigningKey.existingSecret }}{{ .Values.secrets.leaseSigningKey.key }}{{ else }}lease-signing-key.pem{{ end -}}
{{- end -}}

{{- define "cls.tokenSecretName" -}}
{{- default (printf "%s-token-signing-key" (include "cls.fullname" .)) .Values.secrets.tokenSigningKey.existingSecret -}}
{{- end -}}
{{- define "cls.tokenPrivateKeyKey" -}}
{{- if .Values.secrets.tokenSigningKey.existingSecret }}{{ .Values.secrets.tokenSigningKey.privateKeyKey }}{{ else }}token-signing-key.pem{{ end -}}
{{- end -}}
{{- define "cls.tokenPublicKeysKey" -}}
{{- if .Values.secrets.tokenSigningKey.existingSecret }}{{ .Values.secrets.tokenSigningKey.publicKeysKey }}{{ else }}token-verify-keys.pem{{ end -}}
{{- end -}}
{{/* "true" when the token key is generated here: the public key is then derived in the pod. */}}
{{- define "cls.tokenKeyGenerated" -}}
{{- if and (not .Values.secrets.tokenSigningKey.existingSecret) .Values.secrets.generateForDevelopment }}true{{ end -}}
{{- end -}}

{{/*
Internal authentication. pool, allocation and server-identity (the services with callees) each
sign their internal calls with their own Ed25519 key, one Secret holding a key per service;
every service trusts the staff of internalAuth.staff and the services that call it.
*/}}
{{- define "cls.serviceSigningSecretName" -}}
{{- default (printf "%s-service-signing-keys" (include "cls.fullname" .)) .Values.secrets.serviceSigningKeys.existingSecret -}}
{{- end -}}
{{/* Key of a service's private key in that Secret. Context: dict "root" $ "svc" name. */}}
{{- define "cls.serviceSigningSecretKey" -}}
{{- $table := include "cls.services" .root | fromJson -}}
{{- if .root.Values.secrets.serviceSigningKeys.existingSecret -}}
{{- index .root.Values.secrets.serviceSigningKeys.keys (index $table .svc).valuesKey -}}
{{- else -}}
{{- printf "%s.pem" .svc -}}
{{- end -}}
{{- end -}}
{{/* "true" when the services' signing keys are generated here (development); their public keys are then derived. */}}
{{- define "cls.serviceKeysGenerated" -}}
{{- if and (not .Values.secrets.serviceSigningKeys.existingSecret) .Values.secrets.generateForDevelopment }}true{{ end -}}
{{- end -}}
{{- define "cls.trustedCallersName" -}}
{{- printf "%s-internal-trusted-callers" (include "cls.fullname" .) -}}
{{- end -}}

{{/*
The PEM public key of an Ed25519 PKCS#8 PEM private key. Helm has no function for that, but it
can make a certificate for a key, and the certificate's DER holds the SubjectPublicKeyInfo: a
fixed 12-byte Ed25519 header followed by the 32-byte public key, copied out here (sprig's
substr counts bytes). Context: the private key PEM.
*/}}
{{- define "cls.ed25519PublicKeyPem" -}}
{{- $header := "\x30\x2a\x30\x05\x06\x03\x2b\x65\x70\x03\x21\x00" -}}
{{- $cert := genSelfSignedCertWithKey "cls" nil nil 1 . -}}
{{- $der := $cert.Cert | replace "-----BEGIN CERTIFICATE-----" "" | replace "-----END CERTIFICATE-----" "" | nospace | b64dec -}}
{{- $parts := splitList $header $der -}}
{{- if ne (len $parts) 2 }}{{ fail "cls.ed25519PublicKeyPem: the generated key is not an Ed25519 key" }}{{ end -}}
{{- printf "-----BEGIN PUBLIC KEY-----\n%s\n-----END PUBLIC KEY-----\n" (print $header (substr 0 32 (index $parts 1)) | b64enc) -}}
{{- end -}}

{{/*
The signing keys of the services that call others, as JSON: service → {"privateKey", "publicKey"}.
Generated (development): the private key is the existing Secret's (upgrades) or made now, and
the public key is derived from it. Otherwise the private key is in an existing Secret Helm does
not read ("") and the public key is internalAuth.servicePublicKeys'. Include it once per
template file and use the result for everything there: where nothing exists yet, every
include generates new keys.
*/}}
{{- define "cls.serviceKeys" -}}
{{- $root := . -}}
{{- $generated := include "cls.serviceKeysGenerated" . -}}
{{- $existing := dict -}}
{{- if $generated -}}
{{- $existing = (lookup "v1" "Secret" .Release.Namespace (include "cls.serviceSigningSecretName" .)).data | default dict -}}
{{- end -}}
{{- $keys := dict -}}
{{- range $svc, $info := include "cls.services" . | fromJson -}}
{{- if $info.callees -}}
{{- if $generated -}}
{{- $private := index $existing (printf "%s.pem" $svc) | default "" | b64dec | default (genPrivateKey "ed25519") -}}
{{- $_ := set $keys $svc (dict "privateKey" $private "publicKey" (include "cls.ed25519PublicKeyPem" $private)) -}}
{{- else -}}
{{- $_ := set $keys $svc (dict "privateKey" "" "publicKey" (index $root.Values.internalAuth.servicePublicKeys $info.valuesKey)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $keys | toJson -}}
{{- end -}}

{{/*
A service's INTERNAL_TRUSTED_CALLERS_FILE: JSON of actor → PEM public key, the staff and the
services that call it (the callees of the service table), nobody else.
Context: dict "root" $ "keys" (cls.serviceKeys, parsed) "svc" name.
*/}}
{{- define "cls.trustedCallers" -}}
{{- $trusted := dict -}}
{{- range $actor, $pem := .root.Values.internalAuth.staff -}}
{{- $_ := set $trusted $actor $pem -}}
{{- end -}}
{{- range $caller, $info := include "cls.services" .root | fromJson -}}
{{- if has $.svc $info.callees -}}
{{- $current := (index $.keys $caller).publicKey -}}
{{- $retiring := index ($.root.Values.internalAuth.retiringServicePublicKeys | default dict) $info.valuesKey | default "" -}}
{{- if $retiring -}}
{{- $_ := set $trusted (printf "service:%s" $caller) (list $current $retiring) -}}
{{- else -}}
{{- $_ := set $trusted (printf "service:%s" $caller) $current -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $trusted | toPrettyJson -}}
{{- end -}}

{{/* Annotations that make chart-managed Secrets exist before the migration hooks run. */}}
{{- define "cls.hookSecretAnnotations" -}}
helm.sh/hook: pre-install,pre-upgrade
helm.sh/hook-weight: "-10"
helm.sh/hook-delete-policy: before-hook-creation
{{- end -}}

{{/* Where files are mounted in the containers. */}}
{{- define "cls.paths" -}}
tlsDir: /etc/cls/tls
leaseDir: /etc/cls/lease-signing
tokenSigningDir: /etc/cls/token-signing
tokenVerifyDir: /etc/cls/token-verify
internalAuthDir: /etc/cls/internal-auth
serviceSigningDir: /etc/cls/service-signing
{{- end -}}

{{/*
Environment of a service: exactly the variables its config.ts reads.
Context: dict "root" $ "svc" name "command" "serve"|"migrate" (migrations serve no metrics).
*/}}
{{- define "cls.env" -}}
{{- $root := .root -}}
{{- $svc := .svc -}}
{{- $v := include "cls.serviceValues" . | fromJson -}}
{{- $table := include "cls.services" $root | fromJson -}}
{{- $paths := include "cls.paths" $root | fromYaml -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "cls.databaseSecretName" $root }}
      key: {{ include "cls.databaseSecretKey" $root }}
- name: DATABASE_MAX_CONNECTIONS
  value: {{ $v.databaseMaxConnections | toString | quote }}
{{- if include "cls.redisEnabled" $root }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "cls.redisSecretName" $root }}
      key: {{ include "cls.redisSecretKey" $root }}
{{- end }}
- name: PUBLIC_PORT
  value: {{ $root.Values.ports.public | toString | quote }}
- name: INTERNAL_PORT
  value: {{ $root.Values.ports.internal | toString | quote }}
- name: TLS_CERT_FILE
  value: {{ printf "%s/tls.crt" $paths.tlsDir | quote }}
- name: TLS_KEY_FILE
  value: {{ printf "%s/tls.key" $paths.tlsDir | quote }}
{{- if eq $svc "server-identity" }}
- name: TOKEN_SIGNING_KEY_FILE
  value: {{ printf "%s/token-signing-key.pem" $paths.tokenSigningDir | quote }}
- name: TOKEN_TTL_SECONDS
  value: {{ $v.tokenTtlSeconds | toString | quote }}
{{- else }}
- name: TOKEN_VERIFY_KEYS_FILE
  value: {{ printf "%s/token-verify-keys.pem" $paths.tokenVerifyDir | quote }}
{{- end }}
{{- if eq $svc "allocation" }}
- name: LEASE_SIGNING_KEY_FILE
  value: {{ printf "%s/lease-signing-key.pem" $paths.leaseDir | quote }}
- name: RECLAIM_INTERVAL_SECONDS
  value: {{ $v.reclaimIntervalSeconds | toString | quote }}
{{- end }}
{{- if eq .command "serve" }}
- name: INTERNAL_TRUSTED_CALLERS_FILE
  value: {{ printf "%s/trusted-callers.json" $paths.internalAuthDir | quote }}
{{- if (index $table $svc).callees }}
- name: SERVICE_SIGNING_KEY_FILE
  value: {{ printf "%s/service-signing-key.pem" $paths.serviceSigningDir | quote }}
{{- end }}
{{- end }}
{{- range $callee := (index $table $svc).callees }}
- name: {{ printf "%s_INTERNAL_URL" ($callee | replace "-" "_" | upper) }}
  value: {{ include "cls.internalUrl" (dict "root" $root "svc" $callee) | quote }}
{{- end }}
- name: LOG_LEVEL
  value: {{ $root.Values.logLevel | quote }}
- name: METRICS_PORT
  value: {{ ternary $root.Values.metrics.port 0 (and $root.Values.metrics.enabled (eq .command "serve")) | toString | quote }}
{{- with $root.Values.otel.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- with $root.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- with $v.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Volumes of a service's pods. The internal-auth files are for serving only: migrations call nobody.
Context: dict "root" $ "svc" name "command" "serve"|"migrate".
*/}}
{{- define "cls.volumes" -}}
{{- $root := .root -}}
{{- $table := include "cls.services" $root | fromJson -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ $root.Values.tmpSizeLimit }}
- name: tls
  secret:
    secretName: {{ include "cls.tlsSecretName" $root }}
    defaultMode: 288 # 0440
    items:
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
{{- if eq .svc "allocation" }}
- name: lease-signing-key
  secret:
    secretName: {{ include "cls.leaseSecretName" $root }}
    defaultMode: 288 # 0440
    items:
      - key: {{ include "cls.leaseSecretKey" $root }}
        path: lease-signing-key.pem
{{- end }}
{{- if or (eq .svc "server-identity") (include "cls.tokenKeyGenerated" $root) }}
- name: token-signing-key
  secret:
    secretName: {{ include "cls.tokenSecretName" $root }}
    defaultMode: 288 # 0440
    items:
      - key: {{ include "cls.tokenPrivateKeyKey" $root }}
        path: token-signing-key.pem
{{- end }}
{{- if ne .svc "server-identity" }}
{{- if include "cls.tokenKeyGenerated" $root }}
- name: token-verify-keys
  emptyDir:
    medium: Memory
    sizeLimit: 1Mi
{{- else }}
- name: token-verify-keys
  secret:
    secretName: {{ include "cls.tokenSecretName" $root }}
    defaultMode: 288 # 0440
    items:
      - key: {{ include "cls.tokenPublicKeysKey" $root }}
        path: token-verify-keys.pem
{{- end }}
{{- end }}
{{- if eq .command "serve" }}
- name: internal-trusted-callers
  configMap:
    name: {{ include "cls.trustedCallersName" $root }}
    defaultMode: 292 # 0444
    items:
      - key: {{ printf "%s.json" .svc }}
        path: trusted-callers.json
{{- if (index $table .svc).callees }}
- name: service-signing-key
  secret:
    secretName: {{ include "cls.serviceSigningSecretName" $root }}
    defaultMode: 288 # 0440
    items:
      - key: {{ include "cls.serviceSigningSecretKey" . }}
        path: service-signing-key.pem
{{- end }}
{{- end }}
{{- end -}}

{{/* Volume mounts of a service's container. Context: dict "root" $ "svc" name "command" "serve"|"migrate". */}}
{{- define "cls.volumeMounts" -}}
{{- $paths := include "cls.paths" .root | fromYaml -}}
{{- $table := include "cls.services" .root | fromJson -}}
- name: tmp
  mountPath: /tmp
- name: tls
  mountPath: {{ $paths.tlsDir }}
  readOnly: true
{{- if eq .svc "allocation" }}
- name: lease-signing-key
  mountPath: {{ $paths.leaseDir }}
  readOnly: true
{{- end }}
{{- if eq .svc "server-identity" }}
- name: token-signing-key
  mountPath: {{ $paths.tokenSigningDir }}
  readOnly: true
{{- else }}
- name: token-verify-keys
  mountPath: {{ $paths.tokenVerifyDir }}
  readOnly: true
{{- end }}
{{- if eq .command "serve" }}
- name: internal-trusted-callers
  mountPath: {{ $paths.internalAuthDir }}
  readOnly: true
{{- if (index $table .svc).callees }}
- name: service-signing-key
  mountPath: {{ $paths.serviceSigningDir }}
  readOnly: true
{{- end }}
{{- end }}
{{- end -}}

{{/*
Init containers of a service's pods: only when the token key is generated for development,
where the verifying services derive its public key from the private key into a memory volume.
Context: dict "root" $ "svc" name.
*/}}
{{- define "cls.initContainers" -}}
{{- $root := .root -}}
{{- $paths := include "cls.paths" $root | fromYaml -}}
{{- if and (include "cls.tokenKeyGenerated" $root) (ne .svc "server-identity") }}
- name: derive-token-verify-key
  image: {{ include "cls.image" $root | quote }}
  imagePullPolicy: {{ $root.Values.image.pullPolicy }}
  command: ["node"]
  args:
    - "-e"
    - >-
      const { createPublicKey } = require("node:crypto");
      const { readFileSync, writeFileSync } = require("node:fs");
      const pem = createPublicKey(readFileSync(process.argv[1], "utf8")).export({ type: "spki", format: "pem" });
      writeFileSync(process.argv[2], pem);
    - {{ printf "%s/token-signing-key.pem" $paths.tokenSigningDir | quote }}
    - {{ printf "%s/token-verify-keys.pem" $paths.tokenVerifyDir | quote }}
  securityContext:
    {{- toYaml $root.Values.containerSecurityContext | nindent 4 }}
  resources:
    requests:
      cpu: 10m
      memory: 32Mi
    limits:
      memory: 64Mi
  volumeMounts:
    - name: token-signing-key
      mountPath: {{ $paths.tokenSigningDir }}
      readOnly: true
    - name: token-verify-keys
      mountPath: {{ $paths.tokenVerifyDir }}
{{- end }}
{{- end -}}

{{/*
node's V8 heap limits for a service's pods (its values' heap block), as command-line flags:
these take precedence over the image's NODE_OPTIONS defaults, which the migration Jobs keep.
Context: dict "root" $ "svc" name.
*/}}
{{- define "cls.heapArgs" -}}
{{- $heap := (include "cls.serviceValues" . | fromJson).heap -}}
{{- list (printf "--max-old-space-size=%d" (int $heap.maxOldSpaceMb)) (printf "--max-semi-space-size=%d" (int $heap.maxSemiSpaceMb)) | toJson -}}
{{- end -}}

{{/* A memory quantity (e.g. "512Mi", "1G", bytes) in MiB, or "" for a form not read here. Context: the quantity. */}}
{{- define "cls.memoryMiB" -}}
{{- $quantity := toString . -}}
{{- $factors := dict "Ki" (divf 1 1024) "Mi" 1.0 "Gi" 1024.0 "Ti" 1048576.0 "k" (divf 1000 1048576) "M" (divf 1000000 1048576) "G" (divf 1000000000 1048576) "T" (divf 1000000000000 1048576) "" (divf 1 1048576) -}}
{{- if regexMatch `^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$` $quantity -}}
{{- $suffix := regexReplaceAll `^[0-9.]+` $quantity "" -}}
{{- mulf (regexReplaceAll `[A-Za-z]+$` $quantity "" | float64) (index $factors $suffix) -}}
{{- end -}}
{{- end -}}

{{/*
The CLS container of a service, running `node <heap limits> dist/<svc>.mjs serve`, or
`node dist/<svc>.mjs migrate`.
Context: dict "root" $ "svc" name "command" "serve"|"migrate".
*/}}
{{- define "cls.container" -}}
{{- $root := .root -}}
{{- $ctx := dict "root" $root "svc" .svc "command" .command -}}
{{- $args := list (printf "dist/%s.mjs" .svc) .command -}}
{{- if eq .command "serve" }}{{ $args = concat (include "cls.heapArgs" $ctx | fromJsonArray) $args }}{{ end -}}
- name: {{ .svc }}
  image: {{ include "cls.image" $root | quote }}
  imagePullPolicy: {{ $root.Values.image.pullPolicy }}
  command: ["node"]
  args: {{ $args | toJson }}
  env:
    {{- include "cls.env" (dict "root" $root "svc" .svc "command" .command) | nindent 4 }}
  securityContext:
    {{- toYaml $root.Values.containerSecurityContext | nindent 4 }}
  volumeMounts:
    {{- include "cls.volumeMounts" $ctx | nindent 4 }}
{{- end -}}

{{/* Pod-level settings shared by Deployments and Jobs. Context: dict "root" $ "serviceAccount" name. */}}
{{- define "cls.podCommon" -}}
{{- $root := .root -}}
{{- if $root.Values.serviceAccount.create }}
serviceAccountName: {{ .serviceAccount }}
{{- end }}
automountServiceAccountToken: {{ $root.Values.serviceAccount.automountToken }}
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* Egress every CLS pod needs: DNS, Postgres, Redis, the collector, and extra rules. */}}
{{- define "cls.commonEgress" -}}
{{- $egress := .Values.networkPolicy.egress -}}
- to:
    - namespaceSelector:
        {{- toYaml $egress.dns.namespaceSelector | nindent 8 }}
      podSelector:
        {{- toYaml $egress.dns.podSelector | nindent 8 }}
  ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
- {{- with $egress.database.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  ports:
    - port: {{ $egress.database.port }}
      protocol: TCP
{{- if include "cls.redisEnabled" . }}
- {{- with $egress.redis.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  ports:
    - port: {{ $egress.redis.port }}
      protocol: TCP
{{- end }}
{{- if .Values.otel.endpoint }}
- {{- with $egress.otel.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  ports:
    - port: {{ $egress.otel.port }}
      protocol: TCP
{{- end }}
{{- with $egress.extra }}
{{ toYaml . }}
{{- end }}
{{- end -}}
