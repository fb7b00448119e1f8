"""Option orders, to measure and average out position effects.

Respondents (and models) favour options by where they appear. Asking every question in
several option orders and averaging the answers, mapped back to the canonical options,
removes the effect of order on the average; the spread between orders measures it. How
the orders are balanced depends on the question (``balance``):

* ``"reverse"``: the listed order and its reversal, as survey methodology balances a scale
  (ascending and descending); options off the scale (don't know) stay where they are. The
  default for ordinal questions: a scale is never shown rotated or shuffled.
* ``"shift"``: :func:`option_orders`: all ``k!`` orders for ``k <= 4``; above that the ``k``
  cyclic shifts, a Latin square in which every option appears once in every position. The
  default for nominal options.

* ``cyclic_orders(k)``: the ``k`` cyclic shifts alone (training asks every question in them).
* ``reorder(question, order, relabel=True)``: the question with its options shown in that
  order. With ``relabel``, default labels (A, B, C... or 1, 2, 3..., see
  :attr:`~survey_sim.questionnaire.OptionsQuestion.positional_labels`) follow the screen
  position (the first option shown is always "A"); labels the questionnaire gives (a 0-10
  scale labelled 0 to 10) always stay with their options, as they do without ``relabel``.
* ``displays(question, permute=..., balance=...)``: the question as shown, once per order it
  is asked in.
"""

from __future__ import annotations

import itertools
from typing import Literal, TypeVar

from survey_sim.questionnaire import ChoiceQuestion, OptionsQuestion, Question

Q = TypeVar("Q", bound=OptionsQuestion)
Order = tuple[int, ...]
"""Indices into the question's canonical options, in the order they are shown."""
Balance = Literal["auto", "reverse", "shift"]
"""How option orders are balanced: ``"auto"`` reverses ordinal scales and shifts nominal
options (module docstring)."""

ALL_ORDERS_UP_TO = 4


def option_orders(count: int) -> list[Order]:
    """Balanced orders of ``count`` options (identity first)."""
    if count <= ALL_ORDERS_UP_TO:
        return list(itertools.permutations(range(count)))
    return cyclic_orders(count)


def cyclic_orders(count: int) -> list[Order]:
    """The ``count`` cyclic shifts of ``count`` options (identity first): a Latin square,
    every option once in every position."""
    return [tuple((start + i) % count for i in range(count)) for start in range(count)]


def reversed_order(question: OptionsQuestion) -> Order:
    """The listed order reversed, options off the ordinal scale (no position) kept in
    their places."""
    scale = _scale(question)
    slots = sorted(scale) if scale is not None else list(range(len(question.options)))
    order = list(range(len(question.options)))
    for slot, index in zip(slots, reversed(slots), strict=True):
        order[slot] = index
    return tuple(order)


def balance_of(question: OptionsQuestion, balance: Balance) -> Literal["reverse", "shift"]:
    """The balance ``balance`` gives ``question`` (``"auto"``: reverse a scale, shift
    nominal options)."""
    if balance != "auto":
        return balance
    return "reverse" if _scale(question) is not None else "shift"


def _scale(question: OptionsQuestion) -> tuple[int, ...] | None:
    return question.scale() if isinstance(question, ChoiceQuestion) else None


def balanced_orders(question: OptionsQuestion, balance: Balance = "auto") -> list[Order]:
    """The orders ``question`` is asked in (the listed order first)."""
    if balance_of(question, balance) == "reverse":
        return [tuple(range(len(question.options))), reversed_order(question)]
    return option_orders(len(question.options))


def reorder(question: Q, order: Order, *, relabel: bool = True) -> Q:
    """``question`` with its options shown in ``order`` (codes and positions unchanged)."""
    if sorted(order) != list(range(len(question.options))):
        raise ValueError(f"{order} is not an order of {len(question.options)} options")
    options = [question.options[index] for index in order]
    if relabel and question.positional_labels:
        data = question.model_dump()
        data["options"] = [o.model_dump() | {"label": None} for o in options]
        return type(question).model_validate(data)
    return question.model_copy(update={"options": tuple(options)})


def order_name(question: OptionsQuestion, order: Order) -> str:
    """A readable record of an order: the option codes as shown, e.g. ``"0|-1|1"``."""
    return "|".join(question.options[index].code for index in order)


def displays(
    question: Question, *, permute: bool, relabel: bool = True, balance: Balance = "auto"
) -> list[tuple[Question, str | None]]:
    """The question as shown, with the record of its order, once per order it is asked in:
    every order of ``balance`` with ``permute``, else its own order (questions without
    options: once, with no order)."""
    if not isinstance(question, OptionsQuestion):
        return [(question, None)]
    if not permute:
        return [(question, order_name(question, tuple(range(len(question.options)))))]
    return [
        (reorder(question, order, relabel=relabel), order_name(question, order))
        for order in balanced_orders(question, balance)
    ]
