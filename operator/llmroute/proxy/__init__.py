"""The data plane: an OpenAI-compatible gateway that serves one rendered :class:`ProxyConfig`.

It runs as its own process (``llmroute proxy``) and imports only :mod:`llmroute.spec` from the rest of
llmroute. Request path: identity → body checks → rate limits → cache → priority admission → load
balancing with failover → upstream, with Prometheus metrics on every step.
"""
