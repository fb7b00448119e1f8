"""Tuning the respondent model on real survey answers: LoRA adapters, held out by
construction.

* :func:`tune` trains an adapter with one of two objectives: ``population`` (persona cells'
  option distributions pulled toward their people's, SubPOP) or ``individual`` (respondents'
  own answer sequences, loss on the answers only, Spectrum Tuning).
* :class:`TuningSplit` says which questions or respondents were trained on, validated on and
  held out; the adapter records it, and runs refuse to read the adapter's answers where it
  was trained (:mod:`survey_sim.runs.held_out`).
* Use an adapter with ``TransformersEngine.from_pretrained(model, adapter=folder)`` or
  ``--adapter folder``.

torch, transformers and peft load when :func:`tune` runs, not on import.
"""

from survey_sim.tune._split import Objective, TuningSplit
from survey_sim.tune._train import TuningResult, TuningSettings, tune

__all__ = ["Objective", "TuningResult", "TuningSettings", "TuningSplit", "tune"]
