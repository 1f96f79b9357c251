// Build-only module: pins the helm CLI the chart tests run.
module llmroute.io/hack/helm

go 1.26.0

require helm.sh/helm/v4 v4.3.1
