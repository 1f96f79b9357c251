"""The local environment: a real kube-apiserver + etcd + kube-controller-manager and a real Prometheus on
loopback, started as child processes. Used by the tests, the demo and ``llmroute dev up``."""
