"""Option-order permutations, to measure and average out position effects.

Respondents (and models) favour options by where they appear. Asking every question in
several option orders and averaging the answers, mapped back to the canonical options,
removes the effect of order on the average; the spread between orders measures it.

* ``option_orders(k)``: all ``k!`` orders for ``k <= 4``; above that the ``k`` cyclic shifts,
  a Latin square in which every option appears once in every position.
* ``cyclic_orders(k)``: the ``k`` cyclic shifts alone (training asks every question in them).
* ``reorder(question, order, relabel=True)``: the question with its options shown in that
  order. With ``relabel`` the labels follow the screen position (the first option shown is
  always "A"); without, each option keeps its own label.
* ``displays(question, permute=...)``: the question as shown, once per order it is asked in.
"""

from __future__ import annotations

import itertools
from typing import TypeVar

from survey_sim.questionnaire import OptionsQuestion, Question

Q = TypeVar("Q", bound=OptionsQuestion)
Order = tuple[int, ...]
"""Indices into the question's canonical options, in the order they are shown."""

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


def reorder(question: Q, order: Order, *, relabel: bool = True) -> Q:
    """``question`` with its options shown in ``order`` (codes and positions unchanged)."""
    if sorted(order) != list(range(len(question.options))):
        raise ValueError(f"{order} is not an order of {len(question.options)} options")
    options = [question.options[index] for index in order]
    if relabel:
        data = question.model_dump()
        data["options"] = [o.model_dump() | {"label": None} for o in options]
        return type(question).model_validate(data)
    return question.model_copy(update={"options": tuple(options)})


def order_name(question: OptionsQuestion, order: Order) -> str:
    """A readable record of an order: the option codes as shown, e.g. ``"0|-1|1"``."""
    return "|".join(question.options[index].code for index in order)


def displays(
    question: Question, *, permute: bool, relabel: bool = True
) -> list[tuple[Question, str | None]]:
    """The question as shown, with the record of its order, once per order it is asked in:
    every balanced order with ``permute``, else its own order (questions without options:
    once, with no order)."""
    if not isinstance(question, OptionsQuestion):
        return [(question, None)]
    if not permute:
        return [(question, order_name(question, tuple(range(len(question.options)))))]
    return [
        (reorder(question, order, relabel=relabel), order_name(question, order))
        for order in option_orders(len(question.options))
    ]
