# syntax=docker/dockerfile:1
# llmroute: the operator and the proxy in one image (`llmroute operator ...`, `llmroute proxy ...`).
#
#   docker build -t ghcr.io/llmroute/llmroute:$(hack/version.sh) --build-arg VERSION=$(hack/version.sh) .
#
# Base: Debian bookworm slim with Debian's own python3 (3.11). Runs as uid/gid 10001 (the chart's and the
# proxy Deployment's securityContext) and needs no writable root filesystem: bytecode is compiled at build
# time and nothing is written at run time except /tmp when a volume is mounted there.
# Without Docker, `make image` builds this same file with buildah (see dev/llmroute_dev/node/image.py).
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
# Set only behind a TLS-inspecting proxy: the path of a CA bundle for pip, bind-mounted by the build.
ARG PIP_CERT
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/llmroute
COPY pyproject.toml README.md /src/
COPY operator /src/operator
RUN /opt/llmroute/bin/pip install --no-compile /src
COPY hack/image/slim-venv.sh /usr/local/bin/slim-venv
RUN slim-venv /opt/llmroute

FROM ${BASE_IMAGE}
ARG VERSION
ARG SOURCE=https://github.com/llmroute/llmroute
LABEL org.opencontainers.image.title="llmroute" \
      org.opencontainers.image.description="Kubernetes operator and autoscaler for OpenAI-compatible LLM API gateways" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 \
 && rm -rf /var/lib/apt/lists/* /var/cache/debconf/*-old /var/log/apt /var/log/dpkg.log \
 && groupadd --gid 10001 llmroute \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin llmroute
COPY --from=build /opt/llmroute /opt/llmroute
ENV PATH=/opt/llmroute/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /tmp
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["llmroute"]
CMD ["--help"]
