"""Reusable test doubles that run as real servers (fake OpenAI-compatible upstreams)."""
