{{- define "torii.name" -}}torii{{- end -}}

{{- define "torii.fullname" -}}
{{- if contains "torii" .Release.Name -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}{{- else -}}{{ printf "%s-torii" .Release.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "torii.labels" -}}
app.kubernetes.io/name: torii
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "torii.selectorLabels" -}}
app.kubernetes.io/name: torii
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "torii.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}{{ default (include "torii.fullname" .) .Values.serviceAccount.name }}{{- else -}}{{ required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}{{- end -}}
{{- end -}}

{{- define "torii.credentialsSecret" -}}
{{- default (printf "%s-credentials" (include "torii.fullname" .)) .Values.credentials.existingSecret -}}
{{- end -}}

{{/* Rules the operator needs in every namespace it watches. */}}
{{- define "torii.watchRules" -}}
- apiGroups: ["torii.dev"]
  resources: ["gatewayapis", "gatewaykeys", "oauthclients"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["torii.dev"]
  resources: ["gatewayapis/status", "gatewaykeys/status", "oauthclients/status"]
  verbs: ["get", "patch", "update"]
# Generated Secrets: read (its own, and spec.adopt.credentialSecretRef), create, replace (rotation). Never
# list, watch or delete: Secrets go with their owner (ownerReference).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "create", "update"]
- apiGroups: ["", "events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}

{{- define "torii.validate" -}}
{{- if and (not .Values.scope.clusterWide) (not .Values.scope.namespaces) -}}
{{- fail "scope.namespaces must list at least one namespace when scope.clusterWide is false" -}}
{{- end -}}
{{- $names := list -}}{{- range .Values.gateways -}}{{- $names = append $names .name -}}{{- end -}}
{{- if and .Values.defaultGateway (not (has .Values.defaultGateway $names)) -}}
{{- fail (printf "defaultGateway %q is not the name of one of gateways (%s)" .Values.defaultGateway (join ", " $names)) -}}
{{- end -}}
{{- if and (ne .Values.maxObjectWorkers nil) (le (int .Values.maxObjectWorkers) (int .Values.maxHeldChanges)) -}}
{{- fail (printf "maxObjectWorkers (%v) must be greater than maxHeldChanges (%v): held changes wait inside workers" .Values.maxObjectWorkers .Values.maxHeldChanges) -}}
{{- end -}}
{{- end -}}
