"""Asking: how a question becomes a prompt and how answers are read back.

* :mod:`~survey_sim.asking.formats`: prompt formats (chat, spectrum, xml, plain);
* :mod:`~survey_sim.asking.kinds`: per question kind, the score requests and sampling
  prompt, and how results become a distribution over outcomes;
* :mod:`~survey_sim.asking.schemas`: JSON schemas of valid answers (constrained sampling);
* :mod:`~survey_sim.asking.orders`: option orders (permutations) and the question as shown.
"""

from survey_sim.asking.formats import (
    MARKUPS,
    ChatFormat,
    ChatRenderer,
    Markup,
    PlainFormat,
    PromptContext,
    PromptFormat,
    SpectrumFormat,
    Turn,
    XmlFormat,
    get_format,
)
from survey_sim.asking.kinds import Asking, Distribution, answered_turn, ask
from survey_sim.asking.schemas import answer_schema

__all__ = [
    "MARKUPS",
    "Asking",
    "ChatFormat",
    "ChatRenderer",
    "Distribution",
    "Markup",
    "PlainFormat",
    "PromptContext",
    "PromptFormat",
    "SpectrumFormat",
    "Turn",
    "XmlFormat",
    "answer_schema",
    "answered_turn",
    "ask",
    "get_format",
]
