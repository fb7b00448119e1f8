#!/usr/bin/env bash
# Create .venv-sglang/: an SGLang server environment of its own, beside the client in .venv/.
#   bash scripts/setup-sglang.sh
# The server is a separate process, so it keeps its own pins (transformers, xgrammar...)
# without touching the client's. survey-sim finds this environment for `survey-sim serve`
# and the SGLang test tier (or set SURVEY_SIM_SGLANG_PYTHON to another interpreter).
#
# With an NVIDIA GPU this is the ordinary install: `pip install sglang==0.5.23` (CUDA torch,
# flashinfer and the CUDA kernels come with it). Without one it is the slim CPU install
# measured in the project's notes (test use only: the embedded engine is the CPU default):
# CPU torch 2.13.0, sglang without its declared dependencies (CUDA kernels, ~4 GB), then the
# runtime packages the CPU server path imports, constrained to that torch.
set -euo pipefail
cd "$(dirname "$0")/.."

python="${PYTHON:-python3}"
[ -x .venv-sglang/bin/python ] || "$python" -m venv .venv-sglang
pip=".venv-sglang/bin/python -m pip"

if command -v nvidia-smi >/dev/null 2>&1; then
    $pip install --quiet "sglang==0.5.23" "sglang-router>=0.3"
    echo "SGLang installed in .venv-sglang/ (GPU)"
    exit 0
fi

$pip install --quiet "torch==2.13.0"
echo "torch==2.13.0" > .venv-sglang/constraints.txt
$pip install --quiet --no-deps "sglang==0.5.23" "xgrammar==0.2.7"
$pip install --quiet --no-warn-conflicts -c .venv-sglang/constraints.txt \
    "transformers==5.19.0" "tokenizers==0.23.2" "apache-tvm-ffi==0.1.11" \
    aiohttp blobfile==3.0.0 compressed-tensors==0.18.0 dill distro einops fastapi gguf interegular \
    ipython llguidance msgspec numpy "openai==2.8.0" openai-harmony==0.0.4 orjson \
    outlines==0.1.11 packaging partial_json_parser pillow "prometheus-client>=0.20" psutil \
    pybase64 pydantic python-multipart "pyzmq>=25.1.2" regex requests scipy \
    sentencepiece==0.2.1 setproctitle soundfile==0.13.1 tiktoken tqdm "uvicorn>=0.51" uvloop \
    xxhash zstandard mistral_common triton "sglang-router>=0.3"
echo "SGLang installed in .venv-sglang/ (CPU, slim; torch $(.venv-sglang/bin/python -c 'import torch; print(torch.__version__)'))"
