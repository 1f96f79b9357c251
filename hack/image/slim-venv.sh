#!/bin/sh
# Strip a virtualenv down to what llmroute runs, then compile its bytecode (the image's root filesystem is
# read-only at run time, so nothing could be compiled later). Prints the size before and after.
#
#   slim-venv.sh /opt/llmroute
set -eu
venv=$1
site=$(echo "$venv"/lib/python3*/site-packages)
echo "slim-venv: $(du -sm "$venv" | cut -f1) MB before"

# installers: the image never installs anything at run time
rm -rf "$site"/pip "$site"/pip-* "$site"/setuptools "$site"/setuptools-* "$site"/wheel "$site"/wheel-* \
       "$site"/_distutils_hack "$site"/pkg_resources "$site"/distutils-precedence.pth \
       "$venv"/bin/pip* "$venv"/bin/activate*
# the kubernetes package ships a second, asyncio copy of the whole client that nothing here imports
rm -rf "$site"/kubernetes/aio
# test suites, C headers and type stubs of the dependencies
find "$site" -mindepth 2 -type d \( -name tests -o -name testing_data \) -not -path "$site/llmroute/*" \
     -prune -exec rm -rf {} +
rm -rf "$site"/numpy/_core/include "$site"/numpy/f2py/src "$site"/numpy/_pyinstaller
find "$site" -name '*.pyi' -delete
find "$site" -name __pycache__ -type d -prune -exec rm -rf {} +

# bytecode that never checks source mtimes (the files never change in the image)
"$venv"/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash "$site" >/dev/null
echo "slim-venv: $(du -sm "$venv" | cut -f1) MB after"
