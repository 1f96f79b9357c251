// Build-only module: pins the etcd server the test harness runs.
module llmroute.io/hack/etcd

go 1.26.0

require go.etcd.io/etcd/server/v3 v3.6.16
