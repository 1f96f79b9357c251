"""llmroute: a Kubernetes operator and autoscaler for OpenAI-compatible LLM API gateways."""

__version__ = "0.1.0"

GROUP = "llmroute.io"
VERSION = "v1alpha1"
KIND = "LLMRoute"
PLURAL = "llmroutes"
