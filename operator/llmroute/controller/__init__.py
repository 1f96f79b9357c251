"""The operator's runtime: settings, the shared metrics hub, and one route's reconcile cycle. Called by
the thin kopf handlers in :mod:`llmroute.handlers`."""
