{{/*
Copyright 2026 The Keyward Authors.
SPDX-License-Identifier: Apache-2.0
*/}}

{{/* Chart name, overridable. */}}
{{- define "keyward.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Full name used for every namespaced resource. A release called "keyward"
gives "keyward", so the default ServiceAccount matches the Vault roles that
deploy/vault/setup.sh binds (SA keyward in keyward-system).
*/}}
{{- define "keyward.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "keyward.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "keyward.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: keyward
{{- end -}}

{{/* Labels that select the pods; never change them in an upgrade. */}}
{{- define "keyward.selectorLabels" -}}
app.kubernetes.io/name: {{ include "keyward.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "keyward.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "keyward.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "keyward.clusterResourceNamespace" -}}
{{- default .Release.Namespace .Values.clusterResourceNamespace -}}
{{- end -}}

{{/*
Namespaces that get namespaced Roles when watchNamespaces is set: the watched
ones plus the cluster resource namespace (VaultClusterIssuer references),
without duplicates. Rendered as a JSON list for fromJsonArray.
*/}}
{{- define "keyward.roleNamespaces" -}}
{{- $ns := list -}}
{{- range .Values.watchNamespaces -}}
{{- $ns = append $ns . -}}
{{- end -}}
{{- $ns = append $ns (include "keyward.clusterResourceNamespace" .) -}}
{{- $ns | uniq | toJson -}}
{{- end -}}

{{- define "keyward.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "keyward.webhookServiceName" -}}
{{- include "keyward.fullname" . -}}
{{- end -}}

{{- define "keyward.servingCertificateName" -}}
{{- printf "%s-webhook-serving" (include "keyward.fullname" .) -}}
{{- end -}}

{{- define "keyward.servingSecretName" -}}
{{- if .Values.webhook.certManager.enabled -}}
{{- printf "%s-webhook-tls" (include "keyward.fullname" .) -}}
{{- else -}}
{{- required "webhook.tls.secretName is required when webhook.certManager.enabled is false" .Values.webhook.tls.secretName -}}
{{- end -}}
{{- end -}}

{{- define "keyward.vaultCAConfigMapName" -}}
{{- if .Values.vault.caConfigMapName -}}
{{- .Values.vault.caConfigMapName -}}
{{- else -}}
{{- printf "%s-vault-ca" (include "keyward.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "keyward.vaultCAEnabled" -}}
{{- if or .Values.vault.caBundle .Values.vault.caConfigMapName -}}true{{- end -}}
{{- end -}}

{{/*
Namespaced permissions of the controllers and webhooks. Rendered into the
ClusterRole when the whole cluster is watched, or into one Role per namespace
when watchNamespaces is set. No wildcard verbs anywhere.
*/}}
{{- define "keyward.namespacedRules" -}}
# Watcher and scrub webhook: find TLS Secrets that still hold a key and
# replace them with the redacted placeholder. Issuers: read CA bundles and
# AppRole/token Secrets they reference.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "update", "patch"]
{{- if and .Values.custody.enabled .Values.adoption.enabled }}
# Adoption: create the placeholder Secret of a Certificate whose custody
# record is adopted from another cluster (it never holds a key).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["create"]
{{- end }}
# Guard and watcher: map Secrets to their Certificates and read status.
- apiGroups: ["cert-manager.io"]
  resources: ["certificates"]
  verbs: ["get", "list", "watch"]
# Issuer: sign approved CertificateRequests and report the result.
- apiGroups: ["cert-manager.io"]
  resources: ["certificaterequests"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["cert-manager.io"]
  resources: ["certificaterequests/status"]
  verbs: ["update", "patch"]
# Namespaced issuers and their Ready condition.
- apiGroups: ["vault.keyward.io"]
  resources: ["vaultissuers"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["vault.keyward.io"]
  resources: ["vaultissuers/status"]
  verbs: ["update", "patch"]
# Events on CertificateRequests, issuers and Secrets.
- apiGroups: ["", "events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
# TLS reference check: which listeners, Ingress tls entries and ApisixTls
# objects reference a custody placeholder (read only; a group that is not
# installed is simply not watched). The scrub webhook reads Gateways and
# ListenerSets to create SDS references.
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["gateways", "listenersets"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["apisix.apache.org"]
  resources: ["apisixtlses"]
  verbs: ["get", "list", "watch"]
{{- end -}}

{{/*
Namespaces where Keyward may request ServiceAccount tokens (TokenRequest) for
issuers' Vault Kubernetes auth: the cluster resource namespace (VaultClusterIssuers),
the watched namespaces, and rbac.tokenRequestNamespaces (namespaced VaultIssuers).
Never cluster-wide: a token for an arbitrary ServiceAccount is that account's power.
*/}}
{{- define "keyward.tokenNamespaces" -}}
{{- $ns := list (include "keyward.clusterResourceNamespace" .) -}}
{{- range .Values.watchNamespaces -}}
{{- $ns = append $ns . -}}
{{- end -}}
{{- range .Values.rbac.tokenRequestNamespaces -}}
{{- $ns = append $ns . -}}
{{- end -}}
{{- $ns | uniq | toJson -}}
{{- end -}}

{{/*
The custody namespace selector (a LabelSelector object) in label-selector
string syntax for --custody-namespace-selector, e.g.
"keyward.io/custody=enabled,tier in (prod,staging)".
*/}}
{{- define "keyward.custodySelectorString" -}}
{{- $sel := .Values.custody.namespaceSelector -}}
{{- $parts := list -}}
{{- range $k, $v := (default dict $sel.matchLabels) -}}
{{- $parts = append $parts (printf "%s=%s" $k $v) -}}
{{- end -}}
{{- range (default list $sel.matchExpressions) -}}
{{- if eq .operator "In" -}}
{{- $parts = append $parts (printf "%s in (%s)" .key (join "," .values)) -}}
{{- else if eq .operator "NotIn" -}}
{{- $parts = append $parts (printf "%s notin (%s)" .key (join "," .values)) -}}
{{- else if eq .operator "Exists" -}}
{{- $parts = append $parts .key -}}
{{- else if eq .operator "DoesNotExist" -}}
{{- $parts = append $parts (printf "!%s" .key) -}}
{{- else -}}
{{- fail (printf "custody.namespaceSelector: unknown operator %q" .operator) -}}
{{- end -}}
{{- end -}}
{{- if not $parts -}}
{{- fail "custody.namespaceSelector must select something: an empty selector would put every namespace in custody scope" -}}
{{- end -}}
{{- join "," $parts -}}
{{- end -}}
