"""Questionnaires: questions, their answer options, and loading them from YAML.

A questionnaire file looks like this (see ``questionnaires/gss_spending_2018.yaml``)::

    id: gss_spending_2018
    title: GSS 2018 national spending priorities
    option_sets:
      spending:
        - {code: "1", text: Too little}
        - {code: "0", text: About right}
        - {code: "-1", text: Too much}
    questions:
      - id: natfare
        kind: ordinal
        preamble: We are faced with many problems in this country, ...
        text: Welfare
        options: spending          # a named option set, or a list written in place

Option ``code`` is the value stored in data files; ``text`` is what respondents read;
``label`` is the short tag shown before it in a prompt (letters by default, see
``label_style``); a question's labels are all letters or all numbers, which the prompt's
instruction names. Top-level keys starting with ``x-`` are ignored, so they can hold YAML
anchors shared by many questions. Options marked ``substantive: false`` (refusal, don't
know) are scored like any other option but kept out of ordinal positions.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import re
import string
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from survey_sim._codes import declared_code
from survey_sim._conditions import (
    ORDERING,
    All,
    AnswerTest,
    Comparison,
    Condition,
    Reference,
    Test,
    Value,
    evaluate,
    parse_condition,
    references,
    tests,
)
from survey_sim._pipes import PipeError, pipes
from survey_sim._yaml import load_yaml, validate_yaml
from survey_sim.errors import FieldError, FlowWarning, InputError

LabelStyle = Literal["letter", "number"]
LabelKind = Literal["letter", "number"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _parsed(value: str | None) -> str | None:
    """A condition that parses (:mod:`survey_sim._conditions`), kept as written."""
    if value is not None:
        parse_condition(value)
    return value


class Option(_Strict):
    """One answer option.

    Attributes:
        code: Value used in data files and results (``"1"``, ``"-1"``, ``"dk"``...).
        text: The wording respondents read (``"Too little"``).
        label: Short tag shown before the text (``"A"``, ``"1"``); assigned from the
            question's ``label_style`` when left out.
        position: Ordinal position (1 = first end of the scale) for substantive options of
            ordinal questions; ``None`` otherwise.
        substantive: False for refusal / don't know style options.
    """

    code: str
    text: str = Field(min_length=1)
    label: str | None = None
    position: int | None = None
    substantive: bool = True

    _written_as_text = field_validator("code", "text", "label", mode="before")(declared_code)

    @field_validator("code", "label")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("code")
    @classmethod
    def _not_piped(cls, value: str) -> str:
        with contextlib.suppress(PipeError):  # a lone brace in a code is just a brace
            if pipes(value):
                raise ValueError(
                    "an option code cannot be piped (codes are the data's values); pipe "
                    "into the option's text instead"
                )
        return value


class _QuestionBase(_Strict):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    text: str = Field(min_length=1)
    preamble: str | None = None
    ask_if: str | None = None

    _parsed_condition = field_validator("ask_if")(_parsed)

    def wording(self) -> dict[tuple[str | int, ...], str]:
        """Every text a respondent reads, by where it is written (pipes may fill them)."""
        texts: dict[tuple[str | int, ...], str] = {("text",): self.text}
        if self.preamble is not None:
            texts[("preamble",)] = self.preamble
        return texts


class OptionsQuestion(_QuestionBase):
    """A question whose answers are listed options."""

    options: tuple[Option, ...] = Field(min_length=2)
    label_style: LabelStyle = "letter"

    @model_validator(mode="after")
    def _complete_options(self) -> Self:
        _check_unique([o.code for o in self.options], "option code")
        labels = _default_labels(self.label_style, len(self.options))
        ordinal = getattr(self, "kind", None) == "ordinal"
        completed = []
        next_position = 1
        for option, default_label in zip(self.options, labels, strict=True):
            updates: dict[str, Any] = {}
            if option.label is None:
                updates["label"] = default_label
            if ordinal and option.substantive and option.position is None:
                updates["position"] = next_position
            if ordinal and option.substantive:
                next_position += 1
            completed.append(option.model_copy(update=updates) if updates else option)
        _check_unique([o.label for o in completed], "option label")
        _label_kind([o.label or "" for o in completed])
        object.__setattr__(self, "options", tuple(completed))
        return self

    def wording(self) -> dict[tuple[str | int, ...], str]:
        """Every text a respondent reads: the question's, and each option's."""
        texts = super().wording()
        for index, option in enumerate(self.options):
            texts[("options", index, "text")] = option.text
        return texts

    @property
    def label_kind(self) -> LabelKind:
        """What the labels are, as the prompt's instruction names them: ``"number"`` when
        every label is a whole number, else ``"letter"`` (every label is one letter)."""
        return _label_kind([o.label or "" for o in self.options])

    @property
    def positional_labels(self) -> bool:
        """Whether the labels are the default ones of ``label_style`` in listed order (A,
        B, C... or 1, 2, 3...): tags of screen positions, which may follow an option order
        (:func:`survey_sim.asking.orders.reorder`). Any other labels belong to their
        options (a 0-10 scale labelled 0 to 10) and stay with them."""
        labels = [o.label for o in self.options]
        return labels == _default_labels(self.label_style, len(self.options))

    @property
    def outcomes(self) -> tuple[Option, ...]:
        """What results report a probability for: the options."""
        return self.options

    @property
    def non_substantive(self) -> tuple[Option, ...]:
        """The options marked ``substantive: false`` (don't know, refused...)."""
        return tuple(option for option in self.options if not option.substantive)

    def option(self, code: str) -> Option:
        """The option with this code (KeyError naming the known codes otherwise)."""
        for option in self.options:
            if option.code == code:
                return option
        known = ", ".join(o.code for o in self.options)
        raise KeyError(f"question {self.id!r} has no option {code!r} (known: {known})")


class MissingCode(_Strict):
    """A code the data declare missing for a question (no answer, inapplicable...) that is
    not an answer option: never asked or simulated, kept so that an export declares it as
    the source did."""

    code: str
    text: str = Field(min_length=1)

    _written_as_text = field_validator("code", "text", mode="before")(declared_code)


class ChoiceQuestion(OptionsQuestion):
    """A question answered by picking exactly one of its options.

    ``kind`` is ``"single_choice"`` (nominal options) or ``"ordinal"`` (a scale such as
    Likert items; substantive options get ordinal positions in their listed order unless
    positions are given). ``missing_codes`` (:class:`MissingCode`) are the codes the
    question's data declare missing: exports label them and declare them missing (``.sav``),
    as the source file did; ``survey-sim import`` fills them in.
    """

    kind: Literal["single_choice", "ordinal"]
    missing_codes: tuple[MissingCode, ...] = ()

    @model_validator(mode="after")
    def _missing_codes_are_not_options(self) -> Self:
        codes = [o.code for o in self.options]
        _check_unique([m.code for m in self.missing_codes], "missing code")
        both = [m.code for m in self.missing_codes if m.code in codes]
        if both:
            raise ValueError(
                f"codes {', '.join(both)} are options and missing codes; a code is one or the "
                "other (a non-substantive answer the model may give is an option with "
                "substantive: false)"
            )
        return self

    def scale(self) -> tuple[int, ...] | None:
        """The options on the ordinal scale, as indices into ``options`` from one end of the
        scale to the other: the options with a position, in position order (``None`` when
        the question is not ordinal or fewer than two options have positions). The one rule
        every ordinal computation uses (representativeness, the tuning EMD loss)."""
        if self.kind != "ordinal":
            return None
        ranked = sorted(
            (option.position, index)
            for index, option in enumerate(self.options)
            if option.position is not None
        )
        return tuple(index for _, index in ranked) if len(ranked) >= 2 else None


class MultiSelectQuestion(OptionsQuestion):
    """ "Select all that apply": any number of options between ``min_selected`` and
    ``max_selected`` (default: all of them).

    Results give each option's probability of being selected; these do not sum to one.
    """

    kind: Literal["multi_select"]
    min_selected: int = Field(default=0, ge=0)
    max_selected: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _check_bounds(self) -> MultiSelectQuestion:
        if self.max_selected is not None and self.max_selected > len(self.options):
            raise ValueError(
                f"max_selected is {self.max_selected} but there are {len(self.options)} options"
            )
        if self.min_selected > self.most_selected:
            raise ValueError(f"min_selected {self.min_selected} exceeds {self.most_selected}")
        return self

    @property
    def most_selected(self) -> int:
        """``max_selected``, or the number of options when unbounded."""
        return len(self.options) if self.max_selected is None else self.max_selected


MAX_RANKINGS = 720
"""Most rankings a rank question may have (all orders of 6 options): each is an outcome,
read exactly as a chain of choices or sampled under a grammar that lists them all."""


class RankQuestion(OptionsQuestion):
    """Rank ``rank`` of the options (default: all) from first to last.

    Its outcomes are the rankings: every ordered choice of ``rank`` distinct options, coded
    as the options' codes joined by ``>`` (``"b>a>c"``: b first). Results give each
    ranking's probability; :func:`survey_sim.rank_summary` turns them into the probability
    of each option at each rank, ranked first, and its mean rank.
    """

    kind: Literal["rank"]
    rank: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _check_ranking(self) -> RankQuestion:
        if self.rank is not None and self.rank > len(self.options):
            raise ValueError(f"rank is {self.rank} but there are {len(self.options)} options")
        off = [o.code for o in self.non_substantive]
        if off:
            raise ValueError(
                f"options {', '.join(off)} are non-substantive, which a ranking cannot place; "
                "list only the options to rank"
            )
        marked = [o.code for o in self.options if RANK_SEPARATOR in o.code]
        if marked:
            raise ValueError(
                f"option codes {', '.join(marked)} contain {RANK_SEPARATOR!r}, which joins "
                "the codes of a ranking"
            )
        count = math.perm(len(self.options), self.ranked)
        if count > MAX_RANKINGS:
            raise ValueError(
                f"ranking {self.ranked} of {len(self.options)} options has {count:,} possible "
                f"rankings; at most {MAX_RANKINGS} can be read (each is an outcome): set rank "
                "lower (the top few) or list fewer options"
            )
        return self

    @property
    def ranked(self) -> int:
        """How many options a ranking places: ``rank``, or every option."""
        return len(self.options) if self.rank is None else self.rank

    def rankings(self) -> list[tuple[int, ...]]:
        """Every ranking, as option indices from first to last, in a fixed order."""
        return list(itertools.permutations(range(len(self.options)), self.ranked))

    @property
    def outcomes(self) -> tuple[Option, ...]:
        """One outcome per ranking (:meth:`rankings` order): codes, texts and labels of its
        options joined in rank order."""
        return tuple(self.ranking_outcome(ranking) for ranking in self.rankings())

    def ranking_outcome(self, ranking: Sequence[int]) -> Option:
        """The outcome of one ranking (option indices from first to last)."""
        chosen = [self.options[index] for index in ranking]
        return Option(
            code=RANK_SEPARATOR.join(o.code for o in chosen),
            text=" > ".join(o.text for o in chosen),
            label=RANK_SEPARATOR.join(o.label or "" for o in chosen),
        )


RANK_SEPARATOR = ">"
"""What joins the option codes of a ranking."""


class Bin(_Strict):
    """A range of numeric answers reported as one outcome (``min`` and ``max`` included)."""

    code: str
    min: float
    max: float
    text: str | None = None

    _code_as_text = field_validator("code", mode="before")(declared_code)

    @model_validator(mode="after")
    def _ordered(self) -> Bin:
        if self.min > self.max:
            raise ValueError(f"bin {self.code!r}: min {self.min:g} is above max {self.max:g}")
        return self

    def contains(self, value: float) -> bool:
        """Whether ``value`` falls in this bin."""
        return self.min <= value <= self.max

    @property
    def label(self) -> str:
        """``text``, or the range written out (``"18 to 29"``)."""
        if self.text:
            return self.text
        return f"{self.min:g}" if self.min == self.max else f"{self.min:g} to {self.max:g}"


MAX_BINNED_VALUES = 101
"""Integer questions with at most this many values get one bin per value by default."""


class NumericQuestion(_QuestionBase):
    """A question answered with a number between ``minimum`` and ``maximum``.

    ``bins`` group answers into outcomes (ordered, non-overlapping, covering the range).
    Without bins, an integer question with at most 101 values reports each value; other
    numeric questions report only their sampled draws.
    """

    kind: Literal["numeric"]
    minimum: float
    maximum: float
    integer: bool = True
    unit: str | None = None
    bins: tuple[Bin, ...] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _check_range(self) -> NumericQuestion:
        if not (math.isfinite(self.minimum) and math.isfinite(self.maximum)):
            raise ValueError("minimum and maximum must be finite numbers")
        if self.minimum >= self.maximum:
            raise ValueError(f"minimum {self.minimum:g} must be below maximum {self.maximum:g}")
        if self.integer and not (self.minimum.is_integer() and self.maximum.is_integer()):
            raise ValueError("an integer question needs whole-number minimum and maximum")
        if self.bins is not None:
            _check_unique([b.code for b in self.bins], "bin code")
            _check_bins_cover(self.bins, self.minimum, self.maximum, self.integer)
        return self

    def values(self) -> range:
        """Every possible answer of an integer question."""
        if not self.integer:
            raise ValueError(f"question {self.id!r} is not an integer question")
        return range(int(self.minimum), int(self.maximum) + 1)

    @property
    def effective_bins(self) -> tuple[Bin, ...]:
        """``bins``, or one per value for small integer ranges, or none."""
        if self.bins is not None:
            return self.bins
        if self.integer and len(self.values()) <= MAX_BINNED_VALUES:
            return tuple(Bin(code=str(v), min=v, max=v) for v in self.values())
        return ()

    @property
    def outcomes(self) -> tuple[Option, ...]:
        """The bins as ordered outcomes (empty when answers are not binned)."""
        return tuple(
            Option(code=b.code, text=b.label, label=b.label, position=index)
            for index, b in enumerate(self.effective_bins, start=1)
        )

    def bin_of(self, value: float) -> Bin | None:
        """The first bin holding a numeric answer (None when answers are not binned)."""
        return next((b for b in self.effective_bins if b.contains(value)), None)


class FreeTextQuestion(_QuestionBase):
    """An open question answered in the respondent's own words (sampled only)."""

    kind: Literal["free_text"]
    max_chars: int = Field(default=200, ge=1, le=4000)

    @property
    def outcomes(self) -> tuple[Option, ...]:
        """None: free-text answers are reported as draws."""
        return ()


Question = Annotated[
    ChoiceQuestion | MultiSelectQuestion | RankQuestion | NumericQuestion | FreeTextQuestion,
    Field(discriminator="kind"),
]
QUESTION_KINDS = ("single_choice", "ordinal", "multi_select", "rank", "numeric", "free_text")
FlowOrder = Literal["fixed", "random"]


class Grid(_Strict):
    """A grid (matrix): one stem and one scale over many rows, the most common item of web
    surveys. Written in ``questions`` as one entry::

        - id: trust
          kind: grid
          text: How much do you trust each of these?   # the stem
          scale: ordinal            # or single_choice (default: ordinal)
          options: trust_scale      # the scale: a named option set or a list
          rows:
            - {id: trust_parliament, text: The parliament}
            - {id: trust_police, text: The police}

    Each row is asked as a question of its own (``kind`` = ``scale``) whose preamble is the
    stem (after the grid's ``preamble``, if any), so the stem is read once and shared by
    every row's prompt (computed once by the engines). The grid's ``ask_if`` holds for every
    row, and a block may list the grid's id for its rows. This record is what is left of the
    grid after loading: its id, stem and row ids (:meth:`Questionnaire.grid`).
    """

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    text: str = Field(min_length=1)
    preamble: str | None = None
    rows: tuple[str, ...] = Field(min_length=1)


GRID_FIELDS = ("id", "kind", "text", "preamble", "scale", "options", "label_style", "ask_if")
"""What a grid entry may hold besides ``rows``."""
GRID_SCALES = ("ordinal", "single_choice")
"""The kinds a grid's rows may be."""


def _grid_questions(entry: dict[str, Any], index: int) -> tuple[Grid, list[dict[str, Any]]]:
    """A grid entry's record and its rows as question entries (left for validation to
    check as questions). Problems are located at ``("grids", index, field)``: the entry as
    written, before its rows replace it."""
    name = entry.get("id", "(no id)")

    def problem(message: str, *field: str | int) -> FieldError:
        return FieldError(message, ("grids", index, *field))

    unknown = sorted(set(entry) - {*GRID_FIELDS, "rows"})
    if unknown:
        return_fields = ", ".join(GRID_FIELDS)
        raise problem(
            f"unknown field {', '.join(unknown)} (a grid has {return_fields} and rows)", unknown[0]
        )
    rows = entry.get("rows")
    if not isinstance(rows, list) or not rows:
        raise problem("'rows' must list the rows, each with an id and a text")
    for number, row in enumerate(rows):
        if not isinstance(row, dict) or set(row) != {"id", "text"}:
            raise problem(f"a row is written {{id: ..., text: ...}} (got {row!r})", "rows", number)
    if entry.get("scale", "ordinal") not in GRID_SCALES:
        raise problem(f"'scale' is {' or '.join(GRID_SCALES)}, the kind every row is", "scale")
    stem = entry.get("text")
    if not isinstance(stem, str) or not stem.strip():
        raise problem("'text' must be the stem every row shares", "text")
    preamble = entry.get("preamble")
    shared: dict[str, Any] = {
        "kind": entry.get("scale", "ordinal"),
        "preamble": "\n\n".join(text.strip() for text in (preamble, stem) if text),
        "options": entry.get("options"),
        **{key: entry[key] for key in ("label_style", "ask_if") if key in entry},
    }
    record = Grid(id=name, text=stem, preamble=preamble, rows=tuple(str(r["id"]) for r in rows))
    return record, [{"id": row["id"], "text": row["text"], **shared} for row in rows]


def _expand_grids(data: Any) -> Any:
    """A questionnaire's grid entries replaced by their rows, recorded under ``grids``, and
    a block's listing of a grid by the grid's rows."""
    if not isinstance(data, dict) or not isinstance(data.get("questions"), list | tuple):
        return data
    grids: list[Grid] = []
    questions: list[Any] = []
    for index, entry in enumerate(data["questions"]):
        if isinstance(entry, dict) and entry.get("kind") == "grid":
            record, rows = _grid_questions(entry, index)
            grids.append(record)
            questions += rows
        else:
            questions.append(entry)
    if not grids:
        return data
    rows_of = {grid.id: grid.rows for grid in grids}
    blocks: list[Any] = []
    for block in data.get("blocks", ()):
        if isinstance(block, dict) and isinstance(block.get("questions"), list):
            listed = [row for q in block["questions"] for row in rows_of.get(q, (q,))]
            block = {**block, "questions": listed}
        blocks.append(block)
    given = list(data.get("grids", ()))
    return {**data, "questions": questions, "blocks": blocks, "grids": [*given, *grids]}


def grid_origins(questions: Any) -> list[tuple[int, int | None]]:
    """Where each question after grid expansion is written: (entry index, row index within
    its grid or ``None``)."""
    if not isinstance(questions, list):
        return []
    origins: list[tuple[int, int | None]] = []
    for index, entry in enumerate(questions):
        rows = (
            entry.get("rows") if isinstance(entry, dict) and entry.get("kind") == "grid" else None
        )
        if isinstance(rows, list):
            origins += [(index, row) for row in range(len(rows))]
        else:
            origins.append((index, None))
    return origins


class LastAnswers(_Strict):
    """``memory: {last: N}``: a respondent sees the N most recent questions it answered."""

    last: int = Field(ge=1)


Memory = Literal["none", "full"] | LastAnswers
"""What a respondent sees of its interview so far: nothing (``none``: every question on its
own), every earlier answered question (``full``), or the last N (:class:`LastAnswers`)."""


class Block(_Strict):
    """A named group of questions, asked together.

    Attributes:
        questions: Its question ids, in their fixed order.
        order: ``fixed``, or ``random`` (each respondent its own order, seeded).
        ask_if: A condition for every question of the block.
    """

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    questions: tuple[str, ...] = Field(min_length=1)
    order: FlowOrder = "fixed"
    ask_if: str | None = None

    _parsed_condition = field_validator("ask_if")(_parsed)


class Questionnaire(_Strict):
    """An ordered set of questions, with optional shared instructions.

    Attributes:
        id: Short identifier, recorded in results.
        title: Human-readable name.
        source: Where the wording comes from (codebook, year).
        instructions: Text shown before every question (after the persona).
        questions: The questions, in the order they are asked (without blocks).
        blocks: Named groups of questions, each asked together (every question in one
            block), in a fixed or random order (``block_order``); see
            :mod:`survey_sim.flow`.
        block_order: ``fixed`` (as listed) or ``random`` (per respondent, seeded).
        memory: What a respondent sees of its interview so far (:data:`Memory`).
        grids: The grids the questions were written in (:class:`Grid`): filled in from
            ``kind: grid`` entries when the questionnaire is loaded.
    """

    id: str = Field(min_length=1)
    title: str | None = None
    source: str | None = None
    instructions: str | None = None
    questions: tuple[Question, ...] = Field(min_length=1)
    blocks: tuple[Block, ...] = ()
    block_order: FlowOrder = "fixed"
    memory: Memory = "none"
    grids: tuple[Grid, ...] = ()

    _grids_expanded = model_validator(mode="before")(_expand_grids)

    @model_validator(mode="after")
    def _unique_ids(self) -> Questionnaire:
        _check_unique([q.id for q in self.questions], "question id")
        _check_unique([b.id for b in self.blocks], "block id")
        _check_grids(self)
        _check_blocks(self)
        _check_flow(self)
        return self

    @property
    def flow_blocks(self) -> tuple[Block, ...]:
        """The blocks, or one fixed block of every question when none are declared."""
        if self.blocks:
            return self.blocks
        return (Block(id="questions", questions=tuple(q.id for q in self.questions)),)

    @property
    def listed_order(self) -> tuple[str, ...]:
        """Question ids as asked when every order is fixed: block by block, as listed."""
        return tuple(qid for block in self.flow_blocks for qid in block.questions)

    def block_of(self, question_id: str) -> Block:
        """The block holding a question."""
        return next(b for b in self.flow_blocks if question_id in b.questions)

    def condition(self, question_id: str) -> Condition | None:
        """When a question is asked: its block's ``ask_if`` and its own, together (``None``:
        always)."""
        written = [self.block_of(question_id).ask_if, self.question(question_id).ask_if]
        parsed = [parse_condition(text) for text in written if text is not None]
        if not parsed:
            return None
        return parsed[0] if len(parsed) == 1 else All(tuple(parsed))

    def asked_before(self, question_id: str) -> tuple[str, ...]:
        """The questions asked before ``question_id`` in every order the flow allows (so
        its condition and pipes may use them), in listed order."""
        block = self.block_of(question_id)
        within = block.questions[: block.questions.index(question_id)]
        return (*self._before_block(block), *(within if block.order == "fixed" else ()))

    def _before_block(self, block: Block) -> tuple[str, ...]:
        if self.block_order == "random":
            return ()
        earlier = self.flow_blocks[: self.flow_blocks.index(block)]
        return tuple(qid for b in earlier for qid in b.questions)

    def __iter__(self) -> Iterator[Question]:  # type: ignore[override]
        return iter(self.questions)

    def __len__(self) -> int:
        return len(self.questions)

    def question(self, question_id: str) -> Question:
        """The question with this id."""
        for question in self.questions:
            if question.id == question_id:
                return question
        raise KeyError(f"questionnaire {self.id!r} has no question {question_id!r}")

    def grid(self, grid_id: str) -> Grid:
        """The grid with this id."""
        for grid in self.grids:
            if grid.id == grid_id:
                return grid
        known = ", ".join(g.id for g in self.grids) or "none"
        raise KeyError(f"questionnaire {self.id!r} has no grid {grid_id!r} (grids: {known})")

    def grid_of(self, question_id: str) -> Grid | None:
        """The grid a question is a row of (``None``: it is not in a grid)."""
        return next((g for g in self.grids if question_id in g.rows), None)

    def select(self, question_ids: Sequence[str]) -> Questionnaire:
        """A questionnaire holding only the given questions, in the given order."""
        kept = tuple(self.question(q) for q in question_ids)
        grids = tuple(
            grid.model_copy(update={"rows": rows})
            for grid in self.grids
            if (rows := tuple(row for row in grid.rows if row in question_ids))
        )
        return self.model_copy(update={"questions": kept, "grids": grids})

    @classmethod
    def from_yaml(cls, path: str | Path) -> Questionnaire:
        """Load and validate a questionnaire YAML file (see the module docstring)."""
        return load_questionnaire(path)


def load_questionnaire(path: str | Path) -> Questionnaire:
    """Load a questionnaire from YAML, resolving named ``option_sets``.

    Raises:
        InputError: naming the file, line, question and field of the first problem.
    """
    path = Path(path)
    data, node = load_yaml(path)
    if not isinstance(data, dict):
        raise InputError(path, "expected a mapping with 'id' and 'questions' at the top level")
    data = {key: value for key, value in data.items() if not str(key).startswith("x-")}
    questions = data.get("questions")
    option_sets = data.pop("option_sets", None) or {}
    if not isinstance(option_sets, dict):
        raise InputError(path, "'option_sets' must map names to lists of options")
    if isinstance(questions, list):
        data["questions"] = [
            _resolve_option_set(question, option_sets, path, index)
            for index, question in enumerate(questions)
        ]

    origins = grid_origins(questions)

    def written(loc: tuple[Any, ...]) -> tuple[int, int | None, list[Any]] | None:
        """A question's location as written: entry index, grid row (or ``None``) and the
        field's path inside the question."""
        if len(loc) >= 2 and loc[0] == "questions" and isinstance(loc[1], int):
            entry, row = origins[loc[1]] if loc[1] < len(origins) else (loc[1], None)
            return entry, row, [part for part in loc[2:] if part not in QUESTION_KINDS]
        return None

    def describe(loc: tuple[Any, ...]) -> str | None:
        if loc[:1] == ("grids",):
            name = _question_name(questions, loc[1]).removeprefix("question ")
            field = f", field '{'.'.join(map(str, loc[2:]))}'" if loc[2:] else ""
            return f"grid {name}{field}"
        where = written(loc)
        if where is not None:
            entry, row, rest = where
            name = _question_name(questions, entry)
            if row is not None:
                name = f"grid {name.removeprefix('question ')}, row {row + 1}"
            field = f", field '{'.'.join(map(str, rest))}'" if rest else ""
            return f"{name}{field}"
        return "field " + ".".join(str(part) for part in loc) if loc else None

    def in_file(loc: tuple[Any, ...]) -> tuple[Any, ...]:
        """Where a question's field is written: options from a named set are in the set; a
        grid row's id and text in its row, the rest in the grid."""
        if loc[:1] == ("grids",):
            return ("questions", *loc[1:])
        where = written(loc)
        if where is None:
            return loc
        entry, row, rest = where
        options = questions[entry].get("options") if isinstance(questions, list) else None
        if rest[:1] == ["options"] and isinstance(options, str):
            return ("option_sets", options, *rest[1:])
        if row is not None and rest[:1] in (["id"], ["text"]):
            return ("questions", entry, "rows", row, *rest)
        if row is not None:
            return ("questions", entry, *(["text"] if rest[:1] == ["preamble"] else rest))
        return ("questions", entry, *rest)

    return validate_yaml(Questionnaire, data, path, node, describe, in_file)


def _resolve_option_set(question: Any, option_sets: dict[str, Any], path: Path, index: int) -> Any:
    if not isinstance(question, dict) or not isinstance(question.get("options"), str):
        return question
    name = question["options"]
    if name not in option_sets:
        known = ", ".join(sorted(option_sets)) or "none defined"
        raise InputError(
            path,
            f"unknown option set {name!r} (option_sets: {known})",
            location=f"{_question_name([question], 0)}, field 'options'",
        )
    return {**question, "options": option_sets[name]}


def _question_name(questions: Any, index: int) -> str:
    try:
        return f"question {questions[index]['id']!r}"
    except (TypeError, KeyError, IndexError):
        return f"question #{index + 1}"


def _label_kind(labels: Sequence[str]) -> LabelKind:
    if all(re.fullmatch(r"-?[0-9]+", label) for label in labels):
        return "number"
    if all(len(label) == 1 and label.isalpha() for label in labels):
        return "letter"
    raise ValueError(
        f"option labels {', '.join(labels)} are neither all single letters nor all whole "
        "numbers, so the prompt cannot say what to answer with; label every option with a "
        "letter or every option with a number"
    )


def _default_labels(style: LabelStyle, count: int) -> list[str]:
    if style == "number":
        return [str(i + 1) for i in range(count)]
    if count > len(string.ascii_uppercase):
        raise ValueError(f"{count} options is too many for letter labels; use label_style: number")
    return list(string.ascii_uppercase[:count])


def _check_bins_cover(bins: Sequence[Bin], minimum: float, maximum: float, integer: bool) -> None:
    """Bins must run from ``minimum`` to ``maximum`` in order, without gaps or overlaps."""
    step = 1 if integer else 0  # integer bins meet at n and n + 1; others share the boundary
    expected = minimum
    for b in bins:
        if b.min != expected:
            raise ValueError(
                f"bin {b.code!r} starts at {b.min:g}; expected {expected:g} (bins must cover "
                f"{minimum:g} to {maximum:g} in order, without gaps or overlaps)"
            )
        expected = b.max + step
    if bins[-1].max != maximum:
        raise ValueError(f"the last bin ends at {bins[-1].max:g}, not at maximum {maximum:g}")


def _check_unique(values: Sequence[Any], what: str) -> None:
    duplicates = sorted(str(value) for value, count in Counter(values).items() if count > 1)
    if duplicates:
        raise ValueError(f"duplicate {what}: {', '.join(duplicates)}")


def answer_value(question: Question, code: str) -> str | float:
    """What a condition compares an answer with: the option code, or for a numeric
    question its bin's lowest value (a condition's truth is the same for every value of a
    bin, which loading checks)."""
    if isinstance(question, NumericQuestion):
        return next(b.min for b in question.effective_bins if b.code == code)
    return code


def _check_grids(questionnaire: Questionnaire) -> None:
    """A grid's rows are questions of the same scale, and a question is a row of one grid."""
    ids = [q.id for q in questionnaire.questions]
    _check_unique([g.id for g in questionnaire.grids], "grid id")
    clashes = sorted({g.id for g in questionnaire.grids} & set(ids))
    if clashes:
        raise ValueError(f"grid id {', '.join(clashes)} is also a question id")
    _check_unique([row for g in questionnaire.grids for row in g.rows], "grid row")
    for grid in questionnaire.grids:
        absent = [row for row in grid.rows if row not in ids]
        if absent:
            raise ValueError(f"grid {grid.id!r}: rows {', '.join(absent)} are not questions")
        scales = {
            (question.kind, tuple(o.code for o in question.outcomes))
            for question in map(questionnaire.question, grid.rows)
        }
        if len(scales) > 1:
            raise ValueError(f"grid {grid.id!r}: its rows must share one kind and one scale")


def _check_blocks(questionnaire: Questionnaire) -> None:
    if not questionnaire.blocks:
        return
    known = [q.id for q in questionnaire.questions]
    holder: dict[str, str] = {}
    for block_index, block in enumerate(questionnaire.blocks):
        for index, question_id in enumerate(block.questions):
            where = ("blocks", block_index, "questions", index)
            if question_id not in known:
                raise FieldError(
                    f"block {block.id!r} lists {question_id!r}, which is not a question here "
                    f"(questions: {', '.join(known)})",
                    where,
                )
            if question_id in holder:
                raise FieldError(
                    f"question {question_id!r} is in block {holder[question_id]!r} and in "
                    f"block {block.id!r}; a question belongs to one block",
                    where,
                )
            holder[question_id] = block.id
    outside = [question_id for question_id in known if question_id not in holder]
    if outside:
        raise FieldError(
            f"question(s) in no block: {', '.join(outside)}; with blocks, list every question "
            "in one",
            ("blocks",),
        )


def _check_flow(questionnaire: Questionnaire) -> None:
    """Conditions and pipes name earlier questions they can use; warn about a condition that
    can never hold."""
    for index, block in enumerate(questionnaire.blocks):
        if block.ask_if is not None:
            _check_condition(
                questionnaire,
                parse_condition(block.ask_if),
                questionnaire._before_block(block),
                ("blocks", index, "ask_if"),
            )
    for index, question in enumerate(questionnaire.questions):
        before = questionnaire.asked_before(question.id)
        if question.ask_if is not None:
            _check_condition(
                questionnaire,
                parse_condition(question.ask_if),
                before,
                ("questions", index, "ask_if"),
            )
        for where, text in question.wording().items():
            _check_pipes(
                questionnaire,
                text,
                before,
                questionnaire.condition(question.id),
                ("questions", index, *where),
            )
    for question in questionnaire.questions:
        condition = questionnaire.condition(question.id)
        if condition is not None and not _can_hold(questionnaire, condition):
            warnings.warn(
                f"question {question.id!r}: its condition ({condition}) can never hold, so no "
                "respondent is asked it",
                FlowWarning,
                stacklevel=2,
            )


def _check_earlier(
    questionnaire: Questionnaire,
    name: str,
    before: Sequence[str],
    what: str,
    where: tuple[str | int, ...],
) -> Question:
    known = [q.id for q in questionnaire.questions]
    if name not in known:
        raise FieldError(f"{what} names {name!r}, which is not a question here", where)
    if name not in before:
        raise FieldError(
            f"{what} names {name!r}, which is not asked before it in every order (conditions "
            "and pipes can use only answers given earlier; check the blocks and their orders)",
            where,
        )
    question = questionnaire.question(name)
    if not question.outcomes or isinstance(question, MultiSelectQuestion | RankQuestion):
        raise FieldError(
            f"{what} names {name!r}, a {question.kind} question; conditions and pipes can use "
            "single-choice, ordinal and numeric questions with listed answers (whole values "
            "or bins)",
            where,
        )
    return question


def _check_condition(
    questionnaire: Questionnaire,
    condition: Condition,
    before: Sequence[str],
    where: tuple[str | int, ...],
) -> None:
    for test in tests(condition):
        if test.reference.persona:
            continue  # persona attributes are checked against the population of a run
        question = _check_earlier(
            questionnaire, test.reference.name, before, "the condition", where
        )
        problem = _test_problem(test, question)
        if problem:
            raise FieldError(f"{test}: {problem}", where)


def _test_problem(test: Test, question: Question) -> str | None:
    """What is wrong with ``test`` on ``question`` (``None``: nothing)."""
    if isinstance(test, AnswerTest):
        return None
    values = (test.value,) if isinstance(test, Comparison) else test.values
    if isinstance(question, ChoiceQuestion):
        if isinstance(test, Comparison) and test.operator in ORDERING:
            return f"{question.id!r} has options; compare it with ==, != or in"
        codes = [o.code for o in question.options]
        for value in values:
            if not isinstance(value, str):
                return f'option codes are text: write "{value}" in quotes'
            if value not in codes:
                return f"{question.id!r} has no option {value!r} (codes: {', '.join(codes)})"
        return None
    assert isinstance(question, NumericQuestion)
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return f"{question.id!r} is numeric: compare it with a number"
    for item in question.effective_bins:
        if _bin_truth(test, item, question.integer, values) is None:
            return (
                f"true for some answers in bin {item.code!r} ({item.label}) and false for "
                "others; make the condition's numbers bin boundaries"
            )
    return None


def _bin_truth(test: Test, item: Bin, integer: bool, values: Sequence[object]) -> bool | None:
    """The truth of ``test`` for every value in ``item`` (``None``: it differs): a test
    changes truth only at its numbers, so the bin's ends, those numbers and the points
    between them decide it."""
    points = {item.min, item.max}
    for value in values:
        number = float(value)  # type: ignore[arg-type]
        points.update(p for p in (number - 1, number, number + 1) if item.min <= p <= item.max)
    ordered = sorted(points)
    if not integer:
        ordered += [(a + b) / 2 for a, b in itertools.pairwise(ordered)]
    truths = {evaluate(test, _reading({}, point)) for point in ordered}
    return truths.pop() if len(truths) == 1 else None


def _check_pipes(
    questionnaire: Questionnaire,
    text: str,
    before: Sequence[str],
    condition: Condition | None,
    where: tuple[str | int, ...],
) -> None:
    """Pipes name earlier questions, with a fallback unless the question holding them is
    asked only when the piped question was answered."""
    asked = () if condition is None else (condition,)
    try:
        found = pipes(text)
    except PipeError as error:
        raise FieldError(str(error), where) from error
    for pipe in found:
        if pipe.reference.persona:
            continue
        name = pipe.reference.name
        _check_earlier(questionnaire, name, before, f"the pipe {{{name}}}", where)
        if pipe.fallback is None and _can_hold(
            questionnaire, All((*asked, AnswerTest(pipe.reference, answered=False)))
        ):
            raise FieldError(
                f"the pipe {{{name}}} shows the answer to {name!r}, which a respondent asked "
                f"this question may have skipped; give the text shown then: {{{name}|...}}",
                where,
            )


NEVER_CHECK_LIMIT = 100_000
"""Combinations of answers (and persona tests) beyond which loading does not look for a
condition that can never hold."""


def _can_hold(questionnaire: Questionnaire, condition: Condition) -> bool:
    """Whether some answers to the questions ``condition`` names (or their absence, where
    they are conditional) and some persona make it hold."""
    names = sorted(references(condition))
    states: list[list[str | float | None]] = []
    for name in names:
        question = questionnaire.question(name)
        values: list[str | float | None] = [
            answer_value(question, o.code) for o in question.outcomes
        ]
        states.append([*values, None] if questionnaire.condition(name) is not None else values)
    personal = list(dict.fromkeys(t for t in tests(condition) if t.reference.persona))
    combinations = math.prod(len(s) for s in states) * 2 ** len(personal)
    if combinations > NEVER_CHECK_LIMIT:
        return True
    for answers in itertools.product(*states):
        value_of = _reading(dict(zip(names, answers, strict=True)))
        for truths in itertools.product((True, False), repeat=len(personal)):
            decided: dict[Test, bool] = dict(zip(personal, truths, strict=True))
            if evaluate(condition, value_of, decided):
                return True
    return False


def _reading(answers: Mapping[str, Value], otherwise: Value = None) -> Callable[[Reference], Value]:
    """What a condition reads: ``answers`` by question id, ``otherwise`` for the rest."""

    def value_of(reference: Reference) -> Value:
        return answers.get(reference.name, otherwise)

    return value_of
