{{/*
validateValues: fails the render, naming every problem at once, when values contradict each
other or a required secret is neither given nor referenced. Included by deployment.yaml.
*/}}
{{- define "cls.validateValues" -}}
{{- $errors := list -}}
{{- $v := .Values -}}
{{- $dev := $v.secrets.generateForDevelopment -}}
{{- $devHint := "(or, on a throwaway development cluster only, secrets.generateForDevelopment=true)" -}}

{{- /* Required secrets. */ -}}
{{- if not (or $v.database.existingSecret $v.database.url) -}}
{{- $errors = append $errors (printf "database: set database.existingSecret to a Secret holding the Postgres URL under key %q (or database.url); every service needs DATABASE_URL" $v.database.existingSecretKey) -}}
{{- end -}}
{{- if not (or $v.tls.existingSecret $dev) -}}
{{- $errors = append $errors (printf "tls: set tls.existingSecret to a kubernetes.io/tls Secret (tls.crt, tls.key) for the public HTTPS ports %s" $devHint) -}}
{{- end -}}
{{- if not (or $v.secrets.leaseSigningKey.existingSecret $dev) -}}
{{- $errors = append $errors (printf "secrets.leaseSigningKey: set existingSecret to a Secret holding the Ed25519 PKCS#8 PEM lease-signing key under key %q %s" $v.secrets.leaseSigningKey.key $devHint) -}}
{{- end -}}
{{- if not (or $v.secrets.tokenSigningKey.existingSecret $dev) -}}
{{- $errors = append $errors (printf "secrets.tokenSigningKey: set existingSecret to a Secret holding the Ed25519 PKCS#8 PEM token key under key %q and its PEM public key under key %q %s" $v.secrets.tokenSigningKey.privateKeyKey $v.secrets.tokenSigningKey.publicKeysKey $devHint) -}}
{{- end -}}
{{- if and $v.database.existingSecret $v.database.url -}}
{{- $errors = append $errors "database: set either database.existingSecret or database.url, not both" -}}
{{- end -}}
{{- if and $v.redis.existingSecret $v.redis.url -}}
{{- $errors = append $errors "redis: set either redis.existingSecret or redis.url, not both" -}}
{{- end -}}

{{- /* Locking: without Redis, allocation's locks are in-process, correct for one replica only. */ -}}
{{- $a := $v.allocation -}}
{{- if and (not (include "cls.redisEnabled" .)) (not $a.postgresOnlyLocking) -}}
{{- if and $a.autoscaling.enabled (gt (int $a.autoscaling.maxReplicas) 1) -}}
{{- $errors = append $errors (printf "allocation: autoscaling.maxReplicas is %v but Redis is not configured (redis.existingSecret or redis.url): more than one allocation replica needs Redis for its pool locks, or set allocation.postgresOnlyLocking=true to rely on Postgres alone" $a.autoscaling.maxReplicas) -}}
{{- else if and (not $a.autoscaling.enabled) (gt (int $a.replicas) 1) -}}
{{- $errors = append $errors (printf "allocation: replicas is %v but Redis is not configured (redis.existingSecret or redis.url): more than one allocation replica needs Redis for its pool locks, or set allocation.postgresOnlyLocking=true to rely on Postgres alone" $a.replicas) -}}
{{- end -}}
{{- end -}}

{{- /* Per service. */ -}}
{{- range $svc, $info := include "cls.services" . | fromJson -}}
{{- $s := index $v $info.valuesKey -}}
{{- if and $s.autoscaling.enabled (gt (int $s.autoscaling.minReplicas) (int $s.autoscaling.maxReplicas)) -}}
{{- $errors = append $errors (printf "%s.autoscaling: minReplicas (%v) is greater than maxReplicas (%v)" $info.valuesKey $s.autoscaling.minReplicas $s.autoscaling.maxReplicas) -}}
{{- end -}}
{{- end -}}

{{- /* Ingress. */ -}}
{{- if and $v.ingress.enabled (not $v.ingress.host) -}}
{{- $errors = append $errors "ingress: ingress.enabled is true but ingress.host is empty: set the public host name EdgeVis Servers connect to (e.g. cls.example.com)" -}}
{{- end -}}

{{- /* Ports. */ -}}
{{- $ports := list (int $v.ports.public) (int $v.ports.internal) -}}
{{- if $v.metrics.enabled }}{{ $ports = append $ports (int $v.metrics.port) }}{{ end -}}
{{- if ne (len $ports) (len (uniq $ports)) -}}
{{- $errors = append $errors (printf "ports: ports.public (%v), ports.internal (%v) and metrics.port (%v) must all differ" $v.ports.public $v.ports.internal $v.metrics.port) -}}
{{- end -}}

{{- /* Graceful termination: preStop sleep, then up to 10 s of draining, must fit the grace period. */ -}}
{{- if le (int $v.termination.gracePeriodSeconds) (add (int $v.termination.preStopSleepSeconds) 10) -}}
{{- $errors = append $errors (printf "termination: gracePeriodSeconds (%v) must be greater than preStopSleepSeconds (%v) + 10 s of draining" $v.termination.gracePeriodSeconds $v.termination.preStopSleepSeconds) -}}
{{- end -}}

{{- if $errors -}}
{{- fail (printf "\n\nCLS chart: invalid values:\n  - %s\n" (join "\n  - " $errors)) -}}
{{- end -}}
{{- end -}}
