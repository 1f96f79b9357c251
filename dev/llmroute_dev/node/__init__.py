"""A real Kubernetes node on this machine, and the llmroute image it runs, built without a Docker daemon.

- :mod:`.rootfs`: a Debian bookworm slim root filesystem from ``debootstrap`` (the image's base, cached);
- :mod:`.image`: the repository's ``Dockerfile`` built by ``buildah`` (daemonless), exported for containerd;
- :mod:`.network`, :mod:`.runtime`, :mod:`.cluster`, :mod:`.kubelet`: bridge, containerd, control plane,
  kubelet + kube-proxy; :mod:`.node` starts them in order and tears everything down.

Everything runs as root on the host; nothing system-wide is left behind (see :meth:`.node.Node.stop`).
"""
