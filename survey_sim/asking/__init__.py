"""Asking: how a question becomes a prompt and how answers are read back.

* :mod:`~survey_sim.asking.formats`: prompt formats (chat, spectrum, plain);
* :mod:`~survey_sim.asking.kinds`: per question kind, the score requests and sampling
  prompt, and how results become a distribution over outcomes;
* :mod:`~survey_sim.asking.schemas`: JSON schemas of valid answers (constrained sampling);
* :mod:`~survey_sim.asking.orders`: option orders (permutations) and the question as shown.
"""

from survey_sim.asking.formats import (
    ChatFormat,
    ChatRenderer,
    PlainFormat,
    PromptFormat,
    SpectrumFormat,
    get_format,
)
from survey_sim.asking.kinds import Asking, Distribution, ask
from survey_sim.asking.schemas import answer_schema

__all__ = [
    "Asking",
    "ChatFormat",
    "ChatRenderer",
    "Distribution",
    "PlainFormat",
    "PromptFormat",
    "SpectrumFormat",
    "answer_schema",
    "ask",
    "get_format",
]
