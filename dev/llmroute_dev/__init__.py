"""llmroute's development harness (not shipped in the wheel): local clusters, a real node, image builds."""
