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

{{- /* Internal authentication: the services' signing keys, their public keys and the staff. */ -}}
{{- $signingKeys := $v.secrets.serviceSigningKeys -}}
{{- if not (or $signingKeys.existingSecret $dev) -}}
{{- $errors = append $errors (printf "secrets.serviceSigningKeys: set existingSecret to a Secret holding the Ed25519 PKCS#8 PEM private keys with which pool, allocation and server-identity sign their internal calls, under keys %q, %q and %q (their public keys go in internalAuth.servicePublicKeys) %s" $signingKeys.keys.pool $signingKeys.keys.allocation $signingKeys.keys.serverIdentity $devHint) -}}
{{- end -}}
{{- $generatedKeys := include "cls.serviceKeysGenerated" . -}}
{{- /* An Ed25519 SubjectPublicKeyInfo is 44 bytes: a fixed 12-byte header (16 base64 characters) and the key. */ -}}
{{- $ed25519Pem := `^\s*-----BEGIN PUBLIC KEY-----\s*MCowBQYDK2VwAyEA[A-Za-z0-9+/]{43}=\s*-----END PUBLIC KEY-----\s*$` -}}
{{- $pemHint := "an Ed25519 public key in PEM (-----BEGIN PUBLIC KEY-----, as `openssl pkey -in key.pem -pubout` prints it)" -}}
{{- $trusted := list -}}
{{- range $svc, $info := include "cls.services" . | fromJson -}}
{{- if $info.callees -}}
{{- $name := printf "internalAuth.servicePublicKeys.%s" $info.valuesKey -}}
{{- $pem := index $v.internalAuth.servicePublicKeys $info.valuesKey -}}
{{- if $generatedKeys -}}
{{- if $pem -}}
{{- $errors = append $errors (printf "%s: set, but the services' signing keys are generated (secrets.generateForDevelopment without secrets.serviceSigningKeys.existingSecret) and the chart derives their public keys: leave it empty, or set secrets.serviceSigningKeys.existingSecret" $name) -}}
{{- end -}}
{{- else if not $pem -}}
{{- $errors = append $errors (printf "%s: empty: set it to the PEM public key of %s's signing key (key %q of secrets.serviceSigningKeys.existingSecret); the services that %s calls trust it as service:%s" $name $svc (index $signingKeys.keys $info.valuesKey) $svc $svc) -}}
{{- else if contains "PRIVATE KEY" $pem -}}
{{- $errors = append $errors (printf "%s: is a private key: only public keys belong in the values (they are stored in the Helm release); set %s" $name $pemHint) -}}
{{- else if not (regexMatch $ed25519Pem $pem) -}}
{{- $errors = append $errors (printf "%s: must be %s" $name $pemHint) -}}
{{- else -}}
{{- $trusted = append $trusted (dict "actor" (printf "service:%s" $svc) "key" (nospace $pem)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- range $actor, $pem := $v.internalAuth.staff -}}
{{- if not (regexMatch `^staff:[\x21-\x7e]{1,100}$` $actor) -}}
{{- $errors = append $errors (printf "internalAuth.staff: %q is not a staff actor: name each entry staff:<name>, e.g. staff:alice@vendor.example (printable ASCII without spaces, at most 100 characters after staff:)" $actor) -}}
{{- end -}}
{{- if contains "PRIVATE KEY" $pem -}}
{{- $errors = append $errors (printf "internalAuth.staff[%q]: is a private key: only public keys belong in the values (they are stored in the Helm release); set %s" $actor $pemHint) -}}
{{- else if not (regexMatch $ed25519Pem $pem) -}}
{{- $errors = append $errors (printf "internalAuth.staff[%q]: must be %s" $actor $pemHint) -}}
{{- else -}}
{{- $trusted = append $trusted (dict "actor" $actor "key" (nospace $pem)) -}}
{{- end -}}
{{- end -}}
{{- /* The services find a caller by its key: two callers with one key would be confused. */ -}}
{{- range $i, $a := $trusted -}}
{{- range $j, $b := $trusted -}}
{{- if and (lt $i $j) (eq $a.key $b.key) -}}
{{- $errors = append $errors (printf "internalAuth: %s and %s have the same public key: every staff member and service needs a key of its own" $a.actor $b.actor) -}}
{{- end -}}
{{- end -}}
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
{{- /* The heap's limit plus the rest of the process (Node, code, buffers: ~65 MiB at rest, ~105 MiB at the benchmark's peak) must fit the container. */ -}}
{{- $limit := include "cls.memoryMiB" (($s.resources.limits | default dict).memory | default "") -}}
{{- $heapMiB := add (int $s.heap.maxOldSpaceMb) (mul 3 (int $s.heap.maxSemiSpaceMb)) -}}
{{- if and $limit (gt (add $heapMiB 128 | float64) ($limit | float64)) -}}
{{- $errors = append $errors (printf "%s.heap: maxOldSpaceMb (%v) + 3 × maxSemiSpaceMb (%v) + 128 MiB for the rest of the process is %v MiB, more than resources.limits.memory (%v): lower the heap limits or raise the memory limit" $info.valuesKey $s.heap.maxOldSpaceMb $s.heap.maxSemiSpaceMb (add $heapMiB 128) $s.resources.limits.memory) -}}
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
