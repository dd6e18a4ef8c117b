{{/* The chart label of every object: name-version, as Helm's best practices spell it. */}}
{{- define "kosmos.chart" -}}
{{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Registry and path of the images (kosmosctl install --image-repository). */}}
{{- define "kosmos.repository" -}}
{{ .Values.image.repository | trimSuffix "/" }}
{{- end }}

{{/* Image tag of the Kosmos components (--version): the chart's appVersion by default. */}}
{{- define "kosmos.tag" -}}
{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* One image holds every component; the first argument picks which one runs. */}}
{{- define "kosmos.image" -}}
{{ include "kosmos.repository" . }}/kosmos:{{ include "kosmos.tag" . }}
{{- end }}
