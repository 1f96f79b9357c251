"""The image's base without a registry: Debian bookworm ``minbase`` from ``debootstrap``, made "slim" the way
the official ``debian:bookworm-slim`` image is (documentation, man pages and locales excluded from dpkg,
apt configured to keep no caches, the same ``debian.sources``), packed as a tar and cached by its inputs.

``minbase`` installs exactly the packages of ``debian:bookworm-slim`` (``SLIM_PACKAGES``, a test checks it),
so the Dockerfile's ``FROM debian:bookworm-slim`` and this base give the same image.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"

# The package names of the official debian:bookworm-slim image (its published rootfs manifest).
# fmt: off
SLIM_PACKAGES = frozenset(
    [
        "adduser", "apt", "base-files", "base-passwd", "bash", "bsdutils", "coreutils", "dash", "debconf",
        "debian-archive-keyring", "debianutils", "diffutils", "dpkg", "e2fsprogs", "findutils", "gcc-12-base",
        "gpgv", "grep", "gzip", "hostname", "init-system-helpers", "libacl1", "libapt-pkg6.0", "libattr1",
        "libaudit-common", "libaudit1", "libblkid1", "libbz2-1.0", "libc-bin", "libc6", "libcap-ng0",
        "libcap2", "libcom-err2", "libcrypt1", "libdb5.3", "libdebconfclient0", "libext2fs2", "libffi8",
        "libgcc-s1", "libgcrypt20", "libgmp10", "libgnutls30", "libgpg-error0", "libhogweed6", "libidn2-0",
        "liblz4-1", "liblzma5", "libmd0", "libmount1", "libnettle8", "libp11-kit0", "libpam-modules",
        "libpam-modules-bin", "libpam-runtime", "libpam0g", "libpcre2-8-0", "libseccomp2", "libselinux1",
        "libsemanage-common", "libsemanage2", "libsepol2", "libsmartcols1", "libss2", "libstdc++6",
        "libsystemd0", "libtasn1-6", "libtinfo6", "libudev1", "libunistring2", "libuuid1", "libxxhash0",
        "libzstd1", "login", "logsave", "mawk", "mount", "ncurses-base", "ncurses-bin", "passwd", "perl-base",
        "sed", "sysvinit-utils", "tar", "tzdata", "usr-is-merged", "util-linux", "util-linux-extra", "zlib1g",
    ]
)
# fmt: on

# path -> content, written into the root filesystem (the slim image's dpkg and apt settings)
SLIM_FILES: dict[str, str] = {
    "etc/dpkg/dpkg.cfg.d/docker": "\n".join(
        [
            "# slim: no documentation, man pages or translations",
            *(
                f"path-exclude /usr/share/{d}/*"
                for d in ("doc", "groff", "info", "linda", "lintian/overrides", "locale", "man")
            ),
            "path-include /usr/share/doc/*/copyright",
            "path-include /usr/share/locale/locale.alias",
            "",
        ]
    ),
    "etc/dpkg/dpkg.cfg.d/docker-apt-speedup": "force-unsafe-io\n",
    "usr/sbin/policy-rc.d": "#!/bin/sh\n# no service starts inside an image build\nexit 101\n",
    "etc/apt/apt.conf.d/docker-clean": (
        'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb '
        '/var/cache/apt/*.bin || true"; };\n'
        'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb '
        '/var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
        'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n'
    ),
    "etc/apt/apt.conf.d/docker-autoremove-suggests": 'Apt::AutoRemove::SuggestsImportant "false";\n',
    "etc/apt/apt.conf.d/docker-gzip-indexes": 'Acquire::GzipIndexes "true";\n',
    "etc/apt/apt.conf.d/docker-no-languages": 'Acquire::Languages "none";\n',
    "etc/apt/sources.list.d/debian.sources": (
        f"Types: deb\nURIs: {MIRROR}\nSuites: {SUITE} {SUITE}-updates\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        f"Types: deb\nURIs: {SECURITY_MIRROR}\nSuites: {SUITE}-security\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    ),
}
SLIM_REMOVE = ("usr/share/doc", "usr/share/groff", "usr/share/info", "usr/share/linda", "usr/share/man")
KEEP_IN_DOC = "copyright"
RECIPE_VERSION = "1"  # bump when the steps below change


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "llmroute"


def base_key() -> str:
    """A short hash of everything that shapes the base (suite, mirrors, slim settings, this recipe)."""
    digest = hashlib.sha256()
    for part in (RECIPE_VERSION, SUITE, MIRROR, SECURITY_MIRROR, *sorted(SLIM_FILES.items())):
        digest.update(repr(part).encode())
    return digest.hexdigest()[:12]


def base_archive() -> Path:
    """The slim base as a tar (``--numeric-owner``), built once per :func:`base_key` (about a minute)."""
    out_dir = cache_root() / "image"
    archive = out_dir / f"debian-{SUITE}-slim-{base_key()}.tar"
    if archive.is_file():
        return archive
    for tool in ("debootstrap", "tar"):
        if shutil.which(tool) is None:
            raise FileNotFoundError(f"{tool} not found: `make system-deps` installs it")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        subprocess.run(
            ["debootstrap", "--variant=minbase", SUITE, str(rootfs), MIRROR],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        slim(rootfs)
        partial = Path(tmp) / "base.tar"
        subprocess.run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."], check=True)
        partial.replace(archive)
    return archive


def slim(rootfs: Path) -> None:
    """Apply the slim settings to a fresh debootstrap tree and drop what they exclude, and the caches."""
    for rel, content in SLIM_FILES.items():
        path = rootfs / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        path.chmod(0o755 if rel.startswith("usr/sbin/") else 0o644)
    (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
    for rel in SLIM_REMOVE:
        for child in (rootfs / rel).glob("*"):
            if rel == "usr/share/doc" and child.is_dir():
                for item in child.iterdir():
                    if item.name != KEEP_IN_DOC:
                        _remove(item)
            else:
                _remove(child)
    for child in (rootfs / "usr/share/locale").glob("*"):
        if child.name != "locale.alias":
            _remove(child)
    caches = ("var/lib/apt/lists/*", "var/cache/apt/*.bin", "var/cache/apt/archives/*.deb", "var/log/*")
    for pattern in caches:
        for path in rootfs.glob(pattern):
            if path.is_file() or path.is_symlink():
                path.unlink()
    (rootfs / "etc/machine-id").write_text("")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
