"""The public API: every exported name resolves, and importing stays light."""

import subprocess
import sys

import survey_sim


def test_every_exported_name_resolves():
    for name in survey_sim.__all__:
        assert getattr(survey_sim, name) is not None, name


def test_import_does_not_load_torch():
    code = "import sys, survey_sim; print('torch' in sys.modules, 'transformers' in sys.modules)"
    command = [sys.executable, "-c", code]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]
