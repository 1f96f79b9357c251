// Build-only module: the pod sandbox ("pause") process of the local test node.
module llmroute.io/hack/pause

go 1.26.0
