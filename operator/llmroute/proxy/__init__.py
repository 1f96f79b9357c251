"""The data plane: an OpenAI-compatible gateway that serves one rendered :class:`ProxyConfig`.

It runs as its own process (``llmroute proxy``) and imports only :mod:`llmroute.spec` from the rest of
llmroute. Request path (:mod:`llmroute.proxy.handler`): authenticate → parse → rate limits → cache →
priority admission → forward with load balancing and failover (:mod:`llmroute.proxy.forward`,
:mod:`llmroute.proxy.balancer`; ResourceAware signals in :mod:`llmroute.proxy.signals`, scored in
:mod:`llmroute.proxy.scoring`), with Prometheus metrics on every step. :mod:`llmroute.proxy.app`
assembles the parts and :mod:`llmroute.proxy.server` runs them; no part imports either.
"""
