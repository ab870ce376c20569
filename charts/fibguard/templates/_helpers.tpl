{{/*
The label manifests/base/kustomization.yaml adds to every object, never to
selectors. The chart adds no label of its own: its objects render exactly
as the base's, and Helm itself labels what it installs
(app.kubernetes.io/managed-by: Helm, with its release annotations).
*/}}
{{- define "fibguard.labels" -}}
app.kubernetes.io/part-of: fibguard
{{- end }}

{{/*
The DaemonSet's selector, also on its pods. A DaemonSet's selector cannot
change after creation: nothing here may depend on a value.
*/}}
{{- define "fibguard.selectorLabels" -}}
app.kubernetes.io/name: fibguard
{{- end }}

{{/*
The installer's image: repository@digest when a digest is set, else
repository:tag, the tag defaulting to the chart's appVersion.
*/}}
{{- define "fibguard.image" -}}
{{- with .Values.image -}}
{{- if .digest -}}
{{ .repository }}@{{ .digest }}
{{- else -}}
{{ .repository }}:{{ .tag | default $.Chart.AppVersion }}
{{- end -}}
{{- end -}}
{{- end }}

{{/*
FIBGUARD_OPTIONS: the entry's other fields, one JSON object, with the node
name always in it. The plugin runs outside the pod, so its entry carries
the name its Events report; kubelet expands $(NODE_NAME) because NODE_NAME
is listed before FIBGUARD_OPTIONS. The schema keeps nodeName out of
.Values.options.
*/}}
{{- define "fibguard.options" -}}
{{- merge (dict "nodeName" "$(NODE_NAME)") .Values.options | toJson -}}
{{- end }}

{{/*
Refuse to own a namespace the cluster itself needs: with namespace.create,
uninstalling the release deletes its namespace.
*/}}
{{- define "fibguard.checkNamespace" -}}
{{- if and .Values.namespace.create (has .Release.Namespace (list "default" "kube-system" "kube-public" "kube-node-lease")) -}}
{{- fail (printf "namespace.create=true would make this release own (and delete on uninstall) the namespace %q: install into a namespace of its own (--namespace fibguard-system --create-namespace), or set namespace.create=false" .Release.Namespace) -}}
{{- end -}}
{{- end }}
