"""The SGLang tier: a real SGLang server (sglang 0.5.23 from .venv-sglang, made by
scripts/setup-sglang.sh) serving the tiny test model on 127.0.0.1.

On machines without a GPU the server runs on the CPU with the flags and the test support in
``support/`` that stock SGLang needs there (see support/README.md). These tests are part of
the default suite: a missing SGLang environment fails them, it does not skip them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import start

from survey_sim.engines.sglang import SGLangEngine, SGLangSettings
from survey_sim.engines.sglang_server import SGLangServer


# Module scope, not session: an idle SGLang scheduler on a CPU polls at a full core, and
# the tests after this tier (notebooks with torch's threads) slowed down several-fold beside it.
@pytest.fixture(scope="module")
def sglang_server(tiny_model_dir: Path) -> Iterator[SGLangServer]:
    with start(tiny_model_dir) as server:
        yield server


@pytest.fixture(scope="module")
def sglang_engine(sglang_server: SGLangServer) -> Iterator[SGLangEngine]:
    engine = SGLangEngine.connect(sglang_server.url, settings=SGLangSettings(concurrency=4))
    yield engine
    engine.close()
