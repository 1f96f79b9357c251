"""llmroute: a Kubernetes operator and autoscaler for OpenAI-compatible LLM API gateways."""

# the one place the version is kept: the wheel's metadata reads it (pyproject `dynamic`), and
# hack/generate.py copies it into the chart (version, appVersion: the default image tag) and the examples
__version__ = "0.1.0"

GROUP = "llmroute.io"
VERSION = "v1alpha1"
KIND = "LLMRoute"
PLURAL = "llmroutes"
