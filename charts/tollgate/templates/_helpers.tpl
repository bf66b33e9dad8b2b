{{/*
The base name of every object: <release>-<chart>, or the release name when
it already contains the chart name. It is also --name: the webhook
configurations, the certificate Secret (<name>-webhook-tls) and the leader
Lease (<name>-leader).
*/}}
{{- define "tollgate.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "tollgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tollgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tollgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "tollgate.labels" -}}
{{ include "tollgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "tollgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "tollgate.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "tollgate.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the serving certificate, in either mode. */}}
{{- define "tollgate.certSecret" -}}
{{- printf "%s-webhook-tls" (include "tollgate.fullname" .) -}}
{{- end -}}

{{/* The cert-manager Certificate of the serving certificate. */}}
{{- define "tollgate.certificate" -}}
{{- printf "%s-webhook" (include "tollgate.fullname" .) -}}
{{- end -}}

{{/*
The Tollgate config file: config, with every built-in library policy set to
rollout.mode unless config.policies already gives it an action (or it audits
by default: rollout.mode never raises an action).
*/}}
{{- define "tollgate.config" -}}
{{- $cfg := deepCopy (default (dict) .Values.config) -}}
{{- if ne .Values.rollout.mode "enforce" -}}
{{- $policies := default (dict) (get $cfg "policies") -}}
{{- range (.Files.Get "files/library-policies.txt" | trim | splitList "\n") -}}
{{- $fields := splitList " " (trim .) -}}
{{- $id := first $fields -}}
{{- if and $id (not (hasPrefix "#" $id)) (ne (last $fields) "audit") -}}
{{- $p := default (dict) (get $policies $id) -}}
{{- if not (hasKey $p "action") -}}
{{- $_ := set $p "action" $.Values.rollout.mode -}}
{{- end -}}
{{- $_ := set $policies $id $p -}}
{{- end -}}
{{- end -}}
{{- $_ := set $cfg "policies" $policies -}}
{{- end -}}
{{- if $cfg -}}
{{- toYaml $cfg -}}
{{- end -}}
{{- end -}}

{{/* The validating webhook's failure policy. */}}
{{- define "tollgate.validatingFailurePolicy" -}}
{{- if .Values.webhooks.validating.failurePolicy -}}
{{- .Values.webhooks.validating.failurePolicy -}}
{{- else if eq .Values.rollout.mode "enforce" -}}
Fail
{{- else -}}
Ignore
{{- end -}}
{{- end -}}

{{/*
The namespaceSelector of both webhooks: never kube-system, the release
namespace, webhooks.excludedNamespaces or the config's exempt namespaces
(globs cannot be selected; the server skips those itself), and whatever
webhooks.namespaceSelector adds.
*/}}
{{- define "tollgate.namespaceSelector" -}}
{{- $excluded := list "kube-system" .Release.Namespace -}}
{{- range .Values.webhooks.excludedNamespaces -}}
{{- $excluded = append $excluded . -}}
{{- end -}}
{{- range (default (list) (get (default (dict) .Values.config) "exemptNamespaces")) -}}
{{- if not (regexMatch "[*?\\[]" .) -}}
{{- $excluded = append $excluded . -}}
{{- end -}}
{{- end -}}
{{- $expressions := list (dict "key" "kubernetes.io/metadata.name" "operator" "NotIn" "values" ($excluded | uniq | sortAlpha)) -}}
{{- with .Values.webhooks.namespaceSelector.matchExpressions -}}
{{- $expressions = concat $expressions . -}}
{{- end -}}
{{- $selector := dict "matchExpressions" $expressions -}}
{{- with .Values.webhooks.namespaceSelector.matchLabels -}}
{{- $_ := set $selector "matchLabels" . -}}
{{- end -}}
{{- toYaml $selector -}}
{{- end -}}

{{/* The clientConfig of one webhook; the path is the argument's .path. */}}
{{- define "tollgate.clientConfig" -}}
service:
  name: {{ include "tollgate.fullname" .root }}
  namespace: {{ .root.Release.Namespace }}
  path: {{ .path }}
  port: {{ .root.Values.service.port }}
{{- end -}}

{{/* Seconds in a duration written with h, m and s (5m, 1h30m). */}}
{{- define "tollgate.seconds" -}}
{{- $total := 0 -}}
{{- range regexFindAll "[0-9]+[hms]" . -1 -}}
{{- $n := regexFind "^[0-9]+" . | atoi -}}
{{- $unit := . | trimPrefix (toString $n) -}}
{{- $total = add $total (mul $n (get (dict "h" 3600 "m" 60 "s" 1) $unit)) -}}
{{- end -}}
{{- $total -}}
{{- end -}}

{{/*
The mutating webhook's match condition with the default config: a Pod being
created that already holds every default (ownership labels, security
context, requests and limits) and names its images by digest is not sent
to /mutate, its mutation being empty. Generated by webhook.MutateMatchConditions
(with image policies assumed, since the chart cannot see them); a test keeps
the two equal.
*/}}
{{- define "tollgate.mutateCondition" -}}
!(request.resource.group == '' && request.resource.resource == 'pods' && request.subResource == '' && request.operation == 'CREATE' && (has(object.metadata.labels) && "team" in object.metadata.labels) && (has(object.metadata.labels) && "owner" in object.metadata.labels) && (has(object.metadata.labels) && "cost-center" in object.metadata.labels) && (has(object.metadata.labels) && "environment" in object.metadata.labels) && (has(object.spec.securityContext) && has(object.spec.securityContext.runAsNonRoot)) && (has(object.spec.securityContext) && has(object.spec.securityContext.seccompProfile) && has(object.spec.securityContext.seccompProfile.type)) && ((!has(object.spec.initContainers) || object.spec.initContainers.all(c, (has(c.securityContext) && has(c.securityContext.allowPrivilegeEscalation)) && (has(c.securityContext) && has(c.securityContext.capabilities) && has(c.securityContext.capabilities.drop)) && (has(c.image) && c.image.contains('@sha256:')) && (has(c.resources) && has(c.resources.requests) && "cpu" in c.resources.requests) && (has(c.resources) && has(c.resources.requests) && "memory" in c.resources.requests) && (has(c.resources) && has(c.resources.limits) && "memory" in c.resources.limits)))) && ((!has(object.spec.containers) || object.spec.containers.all(c, (has(c.securityContext) && has(c.securityContext.allowPrivilegeEscalation)) && (has(c.securityContext) && has(c.securityContext.capabilities) && has(c.securityContext.capabilities.drop)) && (has(c.image) && c.image.contains('@sha256:')) && (has(c.resources) && has(c.resources.requests) && "cpu" in c.resources.requests) && (has(c.resources) && has(c.resources.requests) && "memory" in c.resources.requests) && (has(c.resources) && has(c.resources.limits) && "memory" in c.resources.limits)))) && ((!has(object.spec.ephemeralContainers) || object.spec.ephemeralContainers.all(c, (has(c.securityContext) && has(c.securityContext.allowPrivilegeEscalation)) && (has(c.securityContext) && has(c.securityContext.capabilities) && has(c.securityContext.capabilities.drop)) && (has(c.image) && c.image.contains('@sha256:'))))))
{{- end -}}
