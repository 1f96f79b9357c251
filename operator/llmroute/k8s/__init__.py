"""Kubernetes adapter: the few API calls the operator makes, as small synchronous functions (the
operator runs them in worker threads). Every write is a patch or a create, so nothing is lost on 409."""
