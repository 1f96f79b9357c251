"""Prometheus adapter: PromQL for the proxy's metric contract, and queries turned into plain numbers and
series keyed by route (``<namespace>/<name>``)."""
