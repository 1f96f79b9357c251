#!/usr/bin/env sh
# Print llmroute's version: the one place it is set is `__version__` in operator/llmroute/__init__.py.
sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$(dirname "$0")/../operator/llmroute/__init__.py"
