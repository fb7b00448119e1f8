"""Real human survey answers in tidy form, read from a data file through a mapping
(:mod:`survey_sim.data.mapping`), with weighted answer distributions and persona cells."""

from __future__ import annotations

import difflib
import math
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import polars as pl

from survey_sim._codes import code_text
from survey_sim._distribution import kish_effective_n, weighted_distribution
from survey_sim.data.mapping import (
    AttributeMapping,
    ColumnMapping,
    DataMapping,
    PopulationRecipe,
    template_fields,
)
from survey_sim.data.readers import read_table
from survey_sim.errors import InputError
from survey_sim.population import Population
from survey_sim.questionnaire import ChoiceQuestion, OptionsQuestion, Questionnaire

HUMAN_COLUMNS = ["respondent_id", "weight", "question_id", "option_code"]
ANONYMOUS = "You are taking part in a survey."
"""The description of a respondent described by no attribute."""


class HumanResponses:
    """Human answers in tidy form: one row per respondent × answered question.

    Columns: ``respondent_id``, ``weight``, ``question_id``, ``option_code``, then one
    column per mapped demographic attribute (as text). ``rows`` is the number of
    respondents in the data as read (those who answered no mapped question have no row in
    ``frame``); ``None`` when not known. ``removed``: the answers each code the mapping
    lists as missing removed, per question (``question_id``, ``code``, ``answers``; codes
    as in the data, with their value label where there is one); ``None`` when not known.
    ``weight_column``: the data's column the weights came from (``None``: unweighted, or
    not known).
    """

    def __init__(
        self,
        frame: pl.DataFrame,
        questionnaire: Questionnaire,
        source: str,
        recipe: PopulationRecipe | None = None,
        rows: int | None = None,
        removed: pl.DataFrame | None = None,
        weight_column: str | None = None,
    ) -> None:
        self.frame = frame
        self.questionnaire = questionnaire
        self.source = source
        self.recipe = recipe
        self.rows = rows
        self.removed = removed
        self.weight_column = weight_column

    @property
    def effective_respondents(self) -> float:
        """The Kish effective sample size of the respondents' weights (their number when
        the data are unweighted)."""
        people = self.frame.unique("respondent_id")
        return float(people.select(kish_effective_n(pl.col("weight"))).item())

    def refuse_weights(self, weighted_data: Literal["refuse", "ignore"], what: str) -> None:
        """Refuse weighted data (weights that differ between respondents) for ``what``,
        which counts every respondent once, unless ``weighted_data="ignore"`` accepts that.

        Raises:
            InputError: weighted data and ``weighted_data="refuse"``.
        """
        people = self.frame.unique("respondent_id")
        if weighted_data == "ignore" or people["weight"].n_unique() <= 1:
            return
        column = f"column {self.weight_column!r}, " if self.weight_column else ""
        raise InputError(
            self.source,
            f"the data are weighted ({column}Kish effective n {self.effective_respondents:,.0f} "
            f"of {people.height:,}), but {what} counts every respondent once: its baselines, "
            "metrics and intervals would describe the sample, not the population. To score "
            "respondents unweighted anyway, pass --unweighted (Python: weighted_data='ignore')",
        )

    def __repr__(self) -> str:
        respondents = self.frame["respondent_id"].n_unique()
        return (
            f"HumanResponses({self.source!r}: {respondents} respondents, "
            f"{self.frame['question_id'].n_unique()} questions, {self.frame.height} answers)"
        )

    def subset(self, condition: pl.Expr, label: str) -> HumanResponses:
        """The respondents' answers where ``condition`` holds (e.g. one subgroup), named
        ``label`` in messages and reprs."""
        return HumanResponses(
            self.frame.filter(condition),
            self.questionnaire,
            f"{self.source} [{label}]",
            self.recipe,
        )

    def only(self, questions: Sequence[str]) -> HumanResponses:
        """The answers to ``questions`` only (same source, weights and population recipe).

        Raises:
            InputError: a question without answers in the data.
        """
        answered = self.frame["question_id"].unique().to_list()
        unknown = [question for question in questions if question not in answered]
        if unknown:
            raise InputError(
                self.source,
                f"no answers to {', '.join(map(repr, unknown))} here (questions with "
                f"answers: {', '.join(sorted(answered))})",
                location="questions",
            )
        kept = pl.col("question_id").is_in(list(questions))
        return HumanResponses(
            self.frame.filter(kept),
            self.questionnaire,
            self.source,
            self.recipe,
            rows=self.rows,
            removed=None if self.removed is None else self.removed.filter(kept),
            weight_column=self.weight_column,
        )

    def substantive(self) -> HumanResponses:
        """The substantive answers only: answers with a non-substantive option (don't know,
        refusal: ``substantive: false``) left out, and those options taken off the
        questionnaire, so that every distribution, score and noise floor is over the
        substantive options and the respondents who chose one. How often people gave a
        non-substantive answer is compared on its own
        (:func:`survey_sim.compare_nonresponse`).
        """
        with_off = {
            question.id: question.non_substantive
            for question in self.questionnaire
            if isinstance(question, OptionsQuestion) and question.non_substantive
        }
        questions = [
            question.model_copy(
                update={"options": tuple(o for o in question.options if o.substantive)}
            )
            if isinstance(question, OptionsQuestion) and question.id in with_off
            else question
            for question in self.questionnaire
        ]
        off = [
            (pl.col("question_id") == question_id) & (pl.col("option_code") == option.code)
            for question_id, options in with_off.items()
            for option in options
        ]
        return HumanResponses(
            self.frame.filter(~pl.any_horizontal(off)) if off else self.frame,
            self.questionnaire.model_copy(update={"questions": tuple(questions)}),
            self.source,
            self.recipe,
            rows=self.rows,
            removed=self.removed,
            weight_column=self.weight_column,
        )

    @cached_property
    def answers(self) -> dict[tuple[str, str], str]:
        """Every answer by (respondent id, question id): its option code."""
        columns = self.frame.select("respondent_id", "question_id", "option_code")
        return {(respondent, question): code for respondent, question, code in columns.iter_rows()}

    @property
    def attributes(self) -> list[str]:
        """The demographic attribute columns."""
        return [c for c in self.frame.columns if c not in HUMAN_COLUMNS]

    def distribution(self, by: Sequence[str] = ()) -> pl.DataFrame:
        """Weighted answer distribution per question (and per ``by`` attribute group).

        Columns: ``by``..., ``question_id``, ``option_code``, ``prob`` (weighted share),
        ``respondents`` (unweighted count choosing the option), ``n`` (respondents who
        answered the question in the group) and ``n_effective`` (Kish effective sample size,
        (Σw)² / Σw², which is what the weights leave of ``n``).
        """
        return answer_distribution(self.frame, self.questionnaire, by=by)

    def cells(
        self, by: Sequence[str] | None = None, min_respondents: int | None = None
    ) -> pl.DataFrame:
        """Respondents grouped into demographic cells: ``by``..., ``weight`` (the cell's
        share of the respondents' total weight, over the cells kept) and ``respondents``.

        Respondents with an empty ``by`` attribute are left out, and so are cells with fewer
        than ``min_respondents`` people. Defaults come from the mapping's ``population``.
        """
        by, min_respondents = self._recipe(by, min_respondents)
        people = self.frame.unique("respondent_id").drop_nulls(by)
        sizes = people.group_by(by).agg(respondents=pl.len())
        kept = sizes.filter(pl.col("respondents") >= min_respondents)
        if kept.is_empty():
            raise InputError(
                self.source,
                f"no cell of {', '.join(by)} has {min_respondents} respondents with those "
                "attributes",
            )
        members = people.join(kept, on=by).with_columns(question_id=pl.lit("cell"), prob=1.0)
        shares = weighted_distribution(members, unit="respondent_id", outcome=by)
        return (
            shares.join(kept, on=by)
            .select(*by, pl.col("prob").alias("weight"), "respondents")
            .sort(by)
        )

    def population(
        self,
        by: Sequence[str] | None = None,
        *,
        template: str | None = None,
        min_respondents: int | None = None,
        id: str | None = None,
    ) -> Population:
        """Persona cells post-stratified to these respondents (see :meth:`cells`).

        Each persona is one combination of the ``by`` attributes, weighted by its share of
        the sample, and described by ``template``, else the mapping's template when its
        fields are among ``by``, else a plain profile listing. Simulating this
        population gives a zero-shot distribution weighted like the real sample, so it can
        be compared with :meth:`distribution` overall and per cell.
        """
        cells = self.cells(by, min_respondents)
        names = [c for c in cells.columns if c not in ("weight", "respondents")]
        records = [
            {
                "id": ", ".join(f"{name}={row[name]}" for name in names),
                "weight": row["weight"],
                **{name: row[name] for name in names},
            }
            for row in cells.iter_rows(named=True)
        ]
        return Population.from_records(
            records,
            template=self._template(names, template),
            id=id or f"{self.questionnaire.id}_cells",
        )

    def respondents(
        self, ids: Sequence[str], attributes: Sequence[str], *, template: str | None = None
    ) -> Population:
        """Respondents as personas (the few-shot individual mode), each described by their
        own ``attributes`` through ``template``, else the mapping's template when its fields
        are among them, else a plain profile listing. Without attributes every respondent
        gets :data:`ANONYMOUS`: the prompt then says nothing about them.

        Raises:
            InputError: an unknown respondent, or one with a missing attribute.
        """
        people = self.frame.unique("respondent_id").select("respondent_id", *attributes)
        by_id = {row["respondent_id"]: row for row in people.iter_rows(named=True)}
        records = []
        for respondent in ids:
            row = by_id.get(respondent)
            if row is None or any(row[name] is None for name in attributes):
                raise InputError(
                    self.source,
                    f"respondent {respondent!r} is not in the data or lacks one of "
                    f"{', '.join(attributes)}",
                )
            records.append(
                {
                    "id": respondent,
                    **({name: row[name] for name in attributes} or {"description": ANONYMOUS}),
                }
            )
        return Population.from_records(
            records,
            template=self._template(attributes, template),
            id=f"{self.questionnaire.id}_respondents",
        )

    def _template(self, names: Sequence[str], template: str | None) -> str | None:
        """``template``, else the mapping's when every field it uses is among ``names``
        (else, with a warning, none: the personas get the plain profile listing)."""
        if template is None and self.recipe is not None and self.recipe.template is not None:
            absent = [f for f in template_fields(self.recipe.template) if f not in names]
            if not absent:
                return self.recipe.template
            warnings.warn(
                f"the mapping's template uses {', '.join(absent)}, which the personas here "
                f"are not described by ({', '.join(names) or 'no attribute'}): they get a "
                "plain profile listing instead",
                stacklevel=3,
            )
        return template

    def _recipe(
        self, by: Sequence[str] | None, min_respondents: int | None
    ) -> tuple[list[str], int]:
        if by is None:
            if self.recipe is None:
                raise InputError(
                    self.source, "name the attributes to group by (the mapping has no population)"
                )
            by = self.recipe.by
        unknown = [name for name in by if name not in self.attributes]
        if unknown or not by:
            raise InputError(
                self.source,
                f"cannot group by {', '.join(unknown) or 'nothing'}: the attributes are "
                f"{', '.join(self.attributes) or 'none'}",
            )
        if min_respondents is None:
            min_respondents = self.recipe.min_respondents if self.recipe else 1
        return list(by), min_respondents

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        mapping: DataMapping | str | Path,
        questionnaire: Questionnaire,
    ) -> HumanResponses:
        """Load a CSV, Parquet, SPSS (``.sav``) or Stata (``.dta``) file through ``mapping``."""
        path = Path(path)
        if not isinstance(mapping, DataMapping):
            mapping = DataMapping.from_yaml(mapping)
        frame, labels = read_table(path, mapping.encoding)
        return cls.from_frame(frame, mapping, questionnaire, source=str(path), labels=labels)

    @classmethod
    def from_frame(
        cls,
        frame: pl.DataFrame,
        mapping: DataMapping,
        questionnaire: Questionnaire,
        *,
        source: str = "<frame>",
        labels: Mapping[str, Mapping[str, str]] | None = None,
    ) -> HumanResponses:
        """Tidy a wide data frame (one row per respondent) through ``mapping``.

        Args:
            labels: Value labels per column (code text -> label), as read from SPSS/Stata;
                mapping codes may name either.
        """
        tidy, removed = _tidy(frame, mapping, questionnaire, source, labels or {})
        return cls(
            tidy,
            questionnaire,
            source,
            mapping.population,
            rows=frame.height,
            removed=removed,
            weight_column=mapping.weight,
        )


def _tidy(
    frame: pl.DataFrame,
    mapping: DataMapping,
    questionnaire: Questionnaire,
    source: str,
    labels: Mapping[str, Mapping[str, str]],
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The tidy answers, and the answers each missing code removed per question."""
    if mapping.questionnaire is not None and mapping.questionnaire != questionnaire.id:
        raise InputError(
            source,
            f"the mapping is for questionnaire {mapping.questionnaire!r}, not {questionnaire.id!r}",
        )
    absent = [(column, where) for column, where in mapping.columns() if column not in frame.columns]
    if absent:
        column, where = absent[0]
        others = f"; {len(absent) - 1} more columns are not there either: " if absent[1:] else ""
        raise mapping.error(
            f"column {column!r} is not in {source}{_closest(column, frame.columns)}{others}"
            + ", ".join(repr(c) for c, _ in absent[1:]),
            where,
            fallback=source,
        )
    respondents = (
        frame[mapping.respondent].map_elements(code_text, return_dtype=pl.String)
        if mapping.respondent
        else pl.Series([str(i + 1) for i in range(frame.height)])
    )
    if respondents.n_unique() != frame.height:
        raise InputError(source, f"respondent ids in column {mapping.respondent!r} repeat")
    weights = _weights(frame, mapping.weight, source)
    base = pl.DataFrame({"respondent_id": respondents, "weight": weights})
    for name, attribute in mapping.attributes.items():
        values = _attribute_values(
            frame[attribute.column].to_list(),
            name,
            attribute,
            labels.get(attribute.column, {}),
            source,
        )
        base = base.with_columns(pl.Series(name, values, dtype=pl.String))
    parts = []
    removed = []
    for question_id, column_mapping in mapping.questions.items():
        question = _mapped_question(questionnaire, question_id, source)
        codes, dropped = _option_codes(
            frame[column_mapping.column].to_list(),
            question,
            column_mapping,
            mapping.missing,
            labels.get(column_mapping.column, {}),
            source,
        )
        parts.append(
            base.with_columns(
                question_id=pl.lit(question_id), option_code=pl.Series(codes, dtype=pl.String)
            ).filter(pl.col("option_code").is_not_null())
        )
        removed += [
            {"question_id": question_id, "code": code, "answers": n}
            for code, n in sorted(dropped.items())
        ]
    removed_frame = pl.DataFrame(
        removed, schema={"question_id": pl.String, "code": pl.String, "answers": pl.Int64}
    )
    return pl.concat(parts).select(*HUMAN_COLUMNS, *mapping.attributes), removed_frame


def _mapped_question(questionnaire: Questionnaire, question_id: str, source: str) -> ChoiceQuestion:
    try:
        question = questionnaire.question(question_id)
    except KeyError as error:
        known = ", ".join(q.id for q in questionnaire)
        raise InputError(
            source,
            f"the mapping names question {question_id!r}, which is not in "
            f"questionnaire {questionnaire.id!r} ({known})",
        ) from error
    if not isinstance(question, ChoiceQuestion):
        raise InputError(
            source,
            f"question {question_id!r} is {question.kind}: human data can be mapped to "
            "single-choice and ordinal questions",
        )
    return question


def _option_codes(
    values: list[Any],
    question: OptionsQuestion,
    mapping: ColumnMapping,
    missing: Sequence[str],
    labels: Mapping[str, str],
    source: str,
) -> tuple[list[str | None], Counter[str]]:
    """Each respondent's option code (``None`` when missing), and the answers each missing
    code removed; unknown codes are an error."""
    known = {o.code for o in question.options}
    translate = mapping.codes if mapping.codes is not None else {code: code for code in known}
    bad_targets = sorted(set(translate.values()) - known)
    if bad_targets:
        raise InputError(
            source,
            f"codes map to options that question {question.id!r} does not have: "
            f"{', '.join(bad_targets)} (options: {', '.join(sorted(known))})",
        )
    return _recode(
        values,
        lambda code, label: translate.get(code, translate.get(label or "")),
        {*missing, *mapping.missing},
        labels,
        source,
        column=mapping.column,
        where=f"question {question.id!r}",
        counted="answer",
        remedy=lambda unknown: _unknown_code_advice(question, translate, unknown),
    )


def _attribute_values(
    values: list[Any],
    name: str,
    mapping: AttributeMapping,
    labels: Mapping[str, str],
    source: str,
) -> list[str | None]:
    """Each respondent's attribute text (``None`` when missing); uncovered values are an error."""
    remedy = "add them to 'labels'" if mapping.labels is not None else "widen the 'bins'"
    values, _ = _recode(
        values,
        mapping.value_of,
        set(mapping.missing),
        labels,
        source,
        column=mapping.column,
        where=f"attribute {name!r}",
        counted="respondent",
        remedy=lambda _: f"{remedy} or list them as 'missing'",
    )
    return values


def _recode(
    values: list[Any],
    lookup: Callable[[str, str | None], str | None],
    missing: set[str],
    labels: Mapping[str, str],
    source: str,
    *,
    column: str,
    where: str,
    counted: str,
    remedy: Callable[[Sequence[str]], str],
) -> tuple[list[str | None], Counter[str]]:
    """``lookup(code, value label)`` for every value that is not missing, and how many
    values each missing code removed; one error lists every value the lookup does not know
    with how many ``counted`` have it, and ``remedy(those codes)``."""
    result: list[str | None] = []
    unknown: Counter[tuple[str, str | None]] = Counter()
    removed: Counter[str] = Counter()
    for value in values:
        if _is_missing(value):
            result.append(None)
            continue
        code = code_text(value)
        label = labels.get(code)
        if code in missing or label in missing:
            removed[code if label is None else f"{code} ({label})"] += 1
            result.append(None)
            continue
        mapped = lookup(code, label)
        if mapped is None:
            unknown[code, label] += 1
        result.append(mapped)
    if unknown:
        listed = ", ".join(
            f"{code}{'' if label is None else f' ({label})'} ({n:,} {counted}{'s' * (n != 1)})"
            for (code, label), n in sorted(unknown.items(), key=lambda item: item[0][0])
        )
        raise InputError(
            source,
            f"column {column!r} has codes the mapping does not know: {listed}; "
            + remedy([code for code, _ in unknown]),
            location=where,
        )
    return result, removed


def _unknown_code_advice(
    question: OptionsQuestion, translate: Mapping[str, str], unknown: Sequence[str]
) -> str:
    """What to do about codes no option takes: for codes inside or next to an ordinal
    scale's numbers, first that the questionnaire may lack the option (listing them as
    missing would drop real answers)."""
    usual = "map them under 'codes' or list them as 'missing'"
    on_scale = {o.code for o in question.options if o.position is not None}
    numbers = [_number(code) for code, option in translate.items() if option in on_scale]
    scale = [n for n in numbers if n is not None]
    near = [
        code
        for code in unknown
        if scale and (n := _number(code)) is not None and min(scale) - 1 <= n <= max(scale) + 1
    ]
    if not near:
        return usual
    return (
        f"{', '.join(sorted(near))} lie on or next to the scale of {question.id!r} "
        f"({min(scale):g} to {max(scale):g}): if they are points of the scale, the "
        "questionnaire lacks those options (add them to the question); only if they are "
        f"not answers, {usual} (which drops them)"
    )


def _number(code: str) -> float | None:
    try:
        return float(code)
    except ValueError:
        return None


def _closest(name: str, columns: Sequence[str]) -> str:
    """`` (closest: a, b)`` naming the columns spelt most like ``name``, or nothing."""
    by_folded = {column.casefold(): column for column in columns}
    close = difflib.get_close_matches(name.casefold(), by_folded, n=3, cutoff=0.5)
    return f" (closest: {', '.join(by_folded[c] for c in close)})" if close else ""


def _weights(frame: pl.DataFrame, column: str | None, source: str) -> pl.Series:
    if column is None:
        return pl.Series([1.0] * frame.height, dtype=pl.Float64)
    weights = frame[column].cast(pl.Float64, strict=False)
    bad = [
        i + 1
        for i, w in enumerate(weights.to_list())
        if w is None or not math.isfinite(w) or w <= 0
    ]
    if bad:
        rows = ", ".join(str(row) for row in bad[:5]) + (" ..." if len(bad) > 5 else "")
        raise InputError(
            source,
            f"weight column {column!r} must hold positive finite numbers; "
            f"{len(bad)} rows do not (data rows {rows})",
        )
    return weights


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def answer_distribution(
    frame: pl.DataFrame, questionnaire: Questionnaire, by: Sequence[str] = ()
) -> pl.DataFrame:
    """Weighted distribution of tidy answers over every option (zero where nobody chose it):
    each respondent is a unit whose distribution puts 1 on their answer."""
    options = pl.DataFrame(
        [
            {"question_id": question.id, "option_code": option.code}
            for question in questionnaire
            if isinstance(question, OptionsQuestion)
            for option in question.options
        ]
    )
    shares = weighted_distribution(
        frame.with_columns(prob=pl.lit(1.0)),
        unit="respondent_id",
        outcome=["option_code"],
        by=by,
        outcomes=options,
    )
    chosen = frame.group_by(*by, "question_id", "option_code").agg(respondents=pl.len())
    return (
        shares.join(
            chosen, on=[*by, "question_id", "option_code"], how="left", maintain_order="left"
        )
        .with_columns(pl.col("respondents").fill_null(0), n=pl.col("units"))
        .select(*by, "question_id", "option_code", "prob", "respondents", "n", "n_effective")
    )
