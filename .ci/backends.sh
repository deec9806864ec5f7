#!/usr/bin/env bash
# Builds (once) the framework virtualenvs the workload child can run under:
#   $DNNPROF_CACHE/venvs/mxnet  MXNet 1.9.1, which needs numpy<1.24
#   $DNNPROF_CACHE/venvs/ipex   Intel Extension for PyTorch 2.8, which needs torch 2.8
# They are separate from the project's virtualenv because their numpy/torch pins clash
# with it; the analyzer never imports them.
set -euo pipefail
CACHE="${DNNPROF_CACHE:-$HOME/.cache/dnnprof}"
VENVS="$CACHE/venvs"
mkdir -p "$VENVS"

make_venv() {  # name, check-import, packages...
    local name="$1" check="$2"
    shift 2
    local dir="$VENVS/$name"
    if [ -x "$dir/bin/python" ] && "$dir/bin/python" -c "$check" >/dev/null 2>&1; then
        echo "backends.sh: $name ready ($dir)"
        return 0
    fi
    echo "backends.sh: building $name virtualenv: $*"
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/python" -m pip install -q --upgrade pip
    "$dir/bin/python" -m pip install -q "$@"
    "$dir/bin/python" -c "$check"
}

make_venv mxnet "import mxnet, numpy; assert numpy.__version__ < '1.24'" "mxnet==1.9.1" "numpy<1.24"
make_venv ipex "import torch, intel_extension_for_pytorch" \
    "torch==2.8.*" "intel-extension-for-pytorch==2.8.*"
