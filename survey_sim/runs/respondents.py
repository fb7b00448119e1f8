"""Simulated respondents: a synthetic sample that walks the whole instrument.

:func:`simulate_respondents` allocates ``n`` respondents to the population's personas by
weight, and interviews each one: in its own order (blocks and questions, seeded by the run's
seed and its id), skipping what its conditions rule out, reading pipes filled with its
earlier answers, seeing what ``memory`` shows of its interview so far, and answering each
question with a draw from the exact distribution of that question given its persona and what
it sees (inverse CDF on a uniform seeded by the run's seed, the respondent and the question,
so a rerun draws the same answers). Questions without an exact distribution (multi-select,
free text, non-integer numbers) are sampled under their JSON schema instead: one request
per distinct prompt and step, drawing one answer for each respondent who reads it.

Respondents are interviewed in steps (everyone's first question, then everyone's second...),
each step one plan. Respondents who would read the same prompt (the same persona and option
order and, under memory or pipes, the same earlier answers) share one request, and the
results store keys on the prompt: the model work grows with the number of distinct paths,
not with ``n``. Without memory, every respondent of a persona reads the prompts a population
run reads (:func:`~survey_sim.runs.run.simulate`), so one costs no model work after the other.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import polars as pl
import psutil

from survey_sim._conditions import Reference, evaluate
from survey_sim._progress import tqdm
from survey_sim.asking.formats import ChatRenderer, PromptContext, PromptFormat
from survey_sim.asking.kinds import MAX_EXACT_VALUES, ask
from survey_sim.asking.orders import displays
from survey_sim.asking.schemas import answer_texts
from survey_sim.data.export import Exported, export_microdata
from survey_sim.data.responses import HumanResponses
from survey_sim.engines.base import Engine, SampleResult, ScoreResult
from survey_sim.errors import InputError
from survey_sim.flow import answer_pipes, check_population, interview_order, personalised
from survey_sim.population import Persona, Population
from survey_sim.questionnaire import (
    ChoiceQuestion,
    NumericQuestion,
    OptionsQuestion,
    Question,
    Questionnaire,
)
from survey_sim.runs.individuals import as_read
from survey_sim.runs.manifest import (
    RespondentsRecord,
    RunManifest,
    StoreRecord,
    questionnaire_sha256,
    run_manifest,
)
from survey_sim.runs.plan import Cell, Plan
from survey_sim.runs.results import ResultFiles, beside, read_checked, read_results, write_results
from survey_sim.runs.run import execute, open_store
from survey_sim.runs.settings import SimulationSettings
from survey_sim.runs.store import ResultsCache

T = TypeVar("T")
Allocation = Literal["proportional", "multinomial"]
"""How respondents are allocated to personas: ``proportional`` (largest remainder: each
persona gets ``floor(n · share)``, the rest go one each to the largest remainders, ties to
the persona listed first) or ``multinomial`` (one draw with the run's seed)."""

WEIGHT_LABEL = "weight: 1 each (respondents are allocated to personas by the personas' weights)"
"""The exported sample's weight column, and what it means."""

MICRODATA_SCHEMA: dict[str, pl.DataType] = {
    "respondent_id": pl.String(),
    "persona_id": pl.String(),
    "question_id": pl.String(),
    "block": pl.String(),
    "position": pl.Int32(),
    "asked": pl.Boolean(),
    "skipped_because": pl.String(),
    "order": pl.String(),
    "answer_code": pl.String(),
    "answer_text": pl.String(),
    "prob": pl.Float64(),
    "method": pl.String(),
    "problem": pl.String(),
    "model": pl.String(),
    "format": pl.String(),
}
MARGINALS_SCHEMA: dict[str, pl.DataType] = {
    "question_id": pl.String(),
    "option_code": pl.String(),
    "asked": pl.Int64(),
    "observed": pl.Float64(),
    "expected": pl.Float64(),
    "chi_square": pl.Float64(),
    "p_value": pl.Float64(),
}


def allocate(population: Population, n: int, allocation: Allocation, seed: int) -> list[Persona]:
    """The persona of each of ``n`` respondents, in persona order (:data:`Allocation`)."""
    personas = list(population)
    weights = np.array([p.weight for p in personas])
    shares = weights / weights.sum()
    if allocation == "multinomial":
        counts = np.random.default_rng(seed).multinomial(n, shares).tolist()
    else:
        exact = shares * n
        counts = np.floor(exact).astype(int).tolist()
        by_remainder = sorted(range(len(personas)), key=lambda i: (-(exact[i] - counts[i]), i))
        for index in by_remainder[: n - sum(counts)]:
            counts[index] += 1
    return [persona for persona, count in zip(personas, counts, strict=True) for _ in range(count)]


def seeded_uniform(seed: int, *parts: str) -> float:
    """A number in [0, 1) fixed by ``seed`` and ``parts``."""
    digest = hashlib.sha256(json.dumps([seed, *parts]).encode()).digest()
    return int.from_bytes(digest[:7], "big") / 2**56


def chi_square_survival(statistic: float, df: int) -> float:
    """P(X >= ``statistic``) for X chi-square with ``df`` degrees of freedom: the regularised
    upper incomplete gamma function Q(df/2, statistic/2) in its closed form for whole and
    half-whole arguments (so the core needs no scipy)."""
    y = statistic / 2
    if df % 2 == 0:
        term = total = 1.0
        for index in range(1, df // 2):
            term *= y / index
            total += term
        return math.exp(-y) * total
    total = math.erfc(math.sqrt(y))
    term = math.sqrt(y) * math.exp(-y) / math.gamma(1.5)
    for index in range(df // 2):
        total += term
        term *= y / (index + 1.5)
    return total


def draw(answers: Sequence[T], probs: Sequence[float], u: float) -> T:
    """The first answer whose cumulative probability exceeds ``u`` (inverse CDF; the last
    one when rounding leaves ``u`` above the total)."""
    total = 0.0
    for answer, prob in zip(answers, probs, strict=True):
        total += prob
        if u < total:
            return answer
    return answers[-1]


@dataclass(frozen=True)
class _Outcome:
    """One answer a respondent can give: its outcome ``code`` (an option's, or a numeric
    answer's bin), ``text`` for the microdata, how the format ``written`` it, the ``value`` a
    condition reads (the code; a number for numeric questions) and its probability."""

    code: str
    text: str
    written: str
    value: str | float
    prob: float


@dataclass(frozen=True)
class _Answer:
    """A question as a respondent was shown it, in which option order, and its answer."""

    question: Question
    order: str | None
    outcome: _Outcome


@dataclass(frozen=True)
class _Read:
    """A distinct prompt's cell, and the answers read from it, in the questionnaire's
    order of options (or of values)."""

    cell: Cell
    outcomes: tuple[_Outcome, ...]


def _outcomes(
    listed: Question, cell: Cell, result: ScoreResult, prompt_format: PromptFormat
) -> tuple[_Outcome, ...]:
    """The answers to ``listed`` (the question as the questionnaire lists it) with their
    probabilities from ``cell``'s one score ``result``: per option, in listed order whatever
    order they were shown in, written with the label or text they were shown with; or per
    value of a numeric question."""
    shown = cell.question
    if isinstance(shown, NumericQuestion):
        return tuple(
            _Outcome(bin_.code, str(value), str(value), value, prob)
            for value, prob in zip(shown.values(), result.probs, strict=True)
            if (bin_ := shown.bin_of(value)) is not None
        )
    assert isinstance(shown, ChoiceQuestion) and isinstance(listed, ChoiceQuestion)
    codes = [option.code for option in shown.options]
    probs = dict(zip(codes, result.probs, strict=True))
    written = dict(zip(codes, answer_texts(shown, prompt_format.answer), strict=True))
    return tuple(
        _Outcome(o.code, o.text, written[o.code], o.code, probs[o.code]) for o in listed.options
    )


def _sampled_outcome(cell: Cell, value: object, text: str) -> _Outcome:
    """A valid sampled answer as an outcome: its code(s) (options joined by ``|``, a
    number's bin; empty for free text), readable text, the model's own ``text`` (what
    memory shows), and the value conditions read."""
    question = cell.question
    codes = cell.asking.outcome_codes(value)
    if isinstance(question, OptionsQuestion):
        chosen = [o for o in question.outcomes if o.code in codes]
        readable = "; ".join(o.text for o in chosen)
        return _Outcome("|".join(o.code for o in chosen), readable, text, "|".join(codes), 0.0)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _Outcome("|".join(codes), f"{value:g}", text, float(value), 0.0)
    return _Outcome("", str(value), text, str(value), 0.0)


@dataclass
class _Interview:
    """One respondent's interview so far."""

    id: str
    persona: Persona
    order: tuple[str, ...]
    answers: dict[str, _Answer] = field(default_factory=dict)

    def reads(self, reference: Reference) -> Any:
        """What a condition reads: an attribute of the persona, or an earlier answer."""
        if reference.persona:
            return self.persona.attributes.get(reference.name)
        answer = self.answers.get(reference.name)
        return None if answer is None else answer.outcome.value


def interview_cell(
    persona: Persona,
    question: Question,
    order: str | None,
    earlier: Sequence[tuple[Question, str]],
    *,
    prompt_format: PromptFormat,
    chat: ChatRenderer,
    instructions: str | None,
) -> Cell:
    """``persona`` asked ``question`` (as shown, in option ``order``) after the ``earlier``
    questions of its interview, each as it was shown with its answer as the format writes
    it: turns of the format, the questionnaire's instructions read with the first question,
    a preamble just read not read again. Read exactly."""
    history = tuple(
        ask(as_read(shown, earlier[index - 1][0] if index else None), prompt_format).turn(
            written, instructions=instructions if index == 0 else None
        )
        for index, (shown, written) in enumerate(earlier)
    )
    if earlier:
        question = as_read(question, earlier[-1][0])
    context = PromptContext(
        prompt_format.describe(persona),
        chat,
        instructions=None if earlier else instructions,
        history=history,
    )
    return Cell(persona, question, ask(question, prompt_format), order, "exact", context)


ROW_BYTES = 2048
"""A generous estimate of the memory one respondent × question takes while a run holds it:
its row (a dict of 15 fields, under 1 KiB with its strings) and its share of the interview
state. Not measured; set high so the refusal comes before memory runs out, not after."""


def _refuse_beyond_memory(n: int, questions: int, available: int | None = None) -> None:
    """Refuse, before any model work, a sample whose rows would not fit in 80% of the
    memory available now."""
    available = psutil.virtual_memory().available if available is None else available
    needed = n * questions * ROW_BYTES
    if needed > 0.8 * available:
        raise InputError(
            "respondents",
            f"{n:,} respondents x {questions} questions need about {needed / 2**30:.1f} GiB "
            f"while a run holds them; {available / 2**30:.1f} GiB is available. Simulate "
            f"fewer at a time (e.g. {max(1, int(0.8 * available / (questions * ROW_BYTES))):,}) "
            "and concatenate samples drawn with different seeds",
        )


def _drawn_exactly(question: Question) -> bool:
    if isinstance(question, NumericQuestion):
        return question.integer and len(question.values()) <= MAX_EXACT_VALUES
    return isinstance(question, ChoiceQuestion)


def simulate_respondents(
    questionnaire: Questionnaire,
    population: Population,
    engine: Engine,
    n: int,
    settings: SimulationSettings | None = None,
    *,
    allocation: Allocation = "proportional",
    progress: bool = True,
    cache: ResultsCache | bool = True,
    **changes: Any,
) -> RespondentsResult:
    """``n`` simulated respondents answering ``questionnaire`` as its flow asks (see the
    module docstring): tidy microdata, its wide form, and a check of its marginals against
    the distributions the answers were drawn from.

    Args:
        n: How many respondents.
        settings: How to ask (:class:`SimulationSettings`): ``seed`` fixes orders and draws;
            with ``permute`` each respondent sees one of the balanced option orders of each
            question, drawn per respondent. Keyword arguments change single settings.
        allocation: How respondents are allocated to personas (:data:`Allocation`).
        progress, cache: As for :func:`~survey_sim.runs.run.simulate`; a rerun of a run
            that was stopped does only the missing work, and draws the same answers.

    Raises:
        InputError: ``n`` below 1, or a condition or pipe naming an attribute no persona
            has; before any model work.
        MethodError: a question's answers that cannot be sampled (a schema too large),
            before any model work.
    """
    started = time.time()
    settings = SimulationSettings.of(settings, **changes)
    if n < 1:
        raise InputError("respondents", f"n must be at least 1, got {n}")
    check_population(questionnaire, population)
    _refuse_beyond_memory(n, len(questionnaire))
    prompt_format = settings.prompt_format()
    width = len(str(n))
    interviews = []
    for index, persona in enumerate(allocate(population, n, allocation, settings.seed)):
        respondent = f"r{index + 1:0{width}d}"
        order = interview_order(questionnaire, settings.seed, respondent)
        interviews.append(_Interview(respondent, persona, order))
    store = open_store(cache)
    work_before = dataclasses.replace(engine.stats)
    interviewer = _Interviewer(questionnaire, population, engine, settings, prompt_format, store)
    steps = tqdm(
        range(len(questionnaire)), desc="Interviewing", unit="question", disable=not progress
    )
    for step in steps:
        interviewer.step(interviews, step, started)
    steps.close()
    manifest = run_manifest(
        questionnaire,
        population,
        engine.describe(),
        settings,
        started=started,
        work=engine.stats.since(work_before),
        store=None
        if store is None
        else StoreRecord(path=str(store.path), hits=interviewer.hits, misses=interviewer.misses),
        respondents=RespondentsRecord(
            respondents=n,
            allocation=allocation,
            distinct_prompts=len(interviewer.read) + len(interviewer.sampled),
        ),
    )
    listed = {qid: index for index, qid in enumerate(questionnaire.listed_order)}
    microdata = pl.DataFrame(interviewer.rows, schema=MICRODATA_SCHEMA).sort(
        "respondent_id", pl.col("question_id").replace_strict(listed)
    )
    return RespondentsResult(microdata, interviewer.marginals(), manifest)


class _Interviewer:
    """Asks every respondent's question of one step, one request per distinct prompt, and
    keeps the rows and the sums the marginals check needs."""

    def __init__(
        self,
        questionnaire: Questionnaire,
        population: Population,
        engine: Engine,
        settings: SimulationSettings,
        prompt_format: PromptFormat,
        store: ResultsCache | None,
    ) -> None:
        self.questionnaire, self.population, self.engine = questionnaire, population, engine
        self.settings, self.format, self.store = settings, prompt_format, store
        self.run = {"model": engine.model_id, "format": prompt_format.name}
        self.rows: list[dict[str, object]] = []
        self.expected: dict[tuple[str, str], float] = {}
        self.observed: dict[tuple[str, str], int] = {}
        self.read: dict[tuple[object, ...], _Read] = {}
        self.sampled: dict[tuple[object, ...], tuple[Cell, SampleResult]] = {}
        self.drawn: dict[tuple[object, ...], int] = {}
        self.hits = self.misses = 0

    def step(self, interviews: Sequence[_Interview], step: int, started: float) -> None:
        cells: dict[tuple[object, ...], Cell] = {}
        asked: list[tuple[_Interview, tuple[object, ...], dict[str, object]]] = []
        for interview in interviews:
            question_id = interview.order[step]
            row: dict[str, object] = {
                "respondent_id": interview.id,
                "persona_id": interview.persona.id,
                "question_id": question_id,
                "block": self.questionnaire.block_of(question_id).id,
                "position": step + 1,
                "asked": True,
                **self.run,
            }
            self.rows.append(row)
            condition = self.questionnaire.condition(question_id)
            if condition is not None and not evaluate(condition, interview.reads):
                row.update(asked=False, skipped_because=str(condition))
                continue
            key, build = self._prompt(interview, question_id)
            if _drawn_exactly(self.questionnaire.question(question_id)):
                if key not in cells and key not in self.read:
                    cells[key] = build()
            else:  # one draw per respondent reading the prompt at this step
                key = (*key, step)
                if key not in cells:
                    cells[key] = build()
                    self.drawn[key] = 0
                self.drawn[key] += 1
            asked.append((interview, key, row))
        for key, cell in cells.items():
            if key in self.drawn:
                seed = int(seeded_uniform(self.settings.seed, *map(str, key)) * 2**53)
                cells[key] = dataclasses.replace(
                    cell, method="sample", samples=self.drawn[key], draw_seed=seed
                )
                self.drawn[key] = 0
        if cells:
            self._read(cells, started)
        for interview, key, row in asked:
            if key in self.drawn:
                self._take_sampled(interview, key, row)
            else:
                self._answer(interview, self.read[key], row)

    def _read(self, cells: dict[tuple[object, ...], Cell], started: float) -> None:
        """Each new prompt's distribution, through the store and the engine."""
        plan = Plan.of(
            cells.values(),
            self.questionnaire,
            self.population,
            self.settings,
            self.format,
            what=f"respondents answering {self.questionnaire.id!r}",
            remedy="Shorten the persona descriptions, the questions or the memory",
        )
        done = execute(
            plan,
            self.engine,
            started=started,
            cache=False if self.store is None else self.store,
            progress=False,
        )
        if done.manifest.cache is not None:
            self.hits += done.manifest.cache.hits
            self.misses += done.manifest.cache.misses
        exact = [(key, cell) for key, cell in cells.items() if cell.method == "exact"]
        for (key, cell), result in zip(exact, done.scores, strict=True):
            listed = self.questionnaire.question(cell.question.id)
            self.read[key] = _Read(cell, _outcomes(listed, cell, result, self.format))
        sampled = [(key, cell) for key, cell in cells.items() if cell.method == "sample"]
        for (key, cell), drawn in zip(sampled, done.samples, strict=True):
            self.sampled[key] = (cell, drawn)

    def _prompt(self, interview: _Interview, question_id: str) -> tuple[tuple[object, ...], Any]:
        """What identifies the prompt ``interview`` reads for ``question_id``, and how to
        build its cell (built once per distinct prompt)."""
        questionnaire, settings = self.questionnaire, self.settings
        question = questionnaire.question(question_id)
        answers = {qid: answer.outcome.text for qid, answer in interview.answers.items()}
        piped = tuple(
            (pipe.reference.name, answers.get(pipe.reference.name))
            for pipe in answer_pipes(question)
        )
        options = displays(
            question, permute=settings.permute, relabel=settings.relabel, balance=settings.balance
        )
        chosen = int(
            seeded_uniform(settings.seed, interview.id, question_id, "order") * len(options)
        )
        order = options[chosen][1]
        seen = self._memory(interview)
        key = (
            interview.persona.id,
            question_id,
            order,
            piped,
            tuple((a.question.id, a.order, a.outcome.written) for a in seen),
        )

        def build() -> Cell:
            read = personalised(question, interview.persona, answers)
            shown = displays(
                read, permute=settings.permute, relabel=settings.relabel, balance=settings.balance
            )[chosen][0]
            earlier = [(answer.question, answer.outcome.written) for answer in seen]
            return interview_cell(
                interview.persona,
                shown,
                order,
                earlier,
                prompt_format=self.format,
                chat=self.engine,
                instructions=questionnaire.instructions,
            )

        return key, build

    def _memory(self, interview: _Interview) -> list[_Answer]:
        """The earlier answers ``interview`` sees now (skipped questions never appear)."""
        memory = self.questionnaire.memory
        answered = list(interview.answers.values())
        if memory == "none":
            return []
        if memory == "full":
            return answered
        return answered[-memory.last :]

    def _answer(self, interview: _Interview, read: _Read, row: dict[str, object]) -> None:
        question_id = read.cell.question.id
        u = seeded_uniform(self.settings.seed, interview.id, question_id)
        index = draw(range(len(read.outcomes)), [o.prob for o in read.outcomes], u)
        outcome = read.outcomes[index]
        row.update(
            order=read.cell.order,
            answer_code=outcome.code,
            answer_text=outcome.text,
            prob=outcome.prob,
            method="exact",
        )
        interview.answers[question_id] = _Answer(read.cell.question, read.cell.order, outcome)
        for each in read.outcomes:
            key = (question_id, each.code)
            self.expected[key] = self.expected.get(key, 0.0) + each.prob
        self.observed[(question_id, outcome.code)] = (
            self.observed.get((question_id, outcome.code), 0) + 1
        )

    def _take_sampled(
        self, interview: _Interview, key: tuple[object, ...], row: dict[str, object]
    ) -> None:
        """The next of the answers sampled for ``key``'s prompt (respondents take them in
        interview order)."""
        cell, drawn = self.sampled[key]
        index = self.drawn[key]
        self.drawn[key] += 1
        row.update(order=cell.order, method="sample")
        text, value = drawn.texts[index], drawn.values[index]
        if drawn.truncated[index] or drawn.invalid[index] or value is None:
            cut = "cut off at the token limit" if drawn.truncated[index] else "not a valid answer"
            row.update(problem=f"{cut}: {text[:60]!r}")
            return
        outcome = _sampled_outcome(cell, value, text)
        listed = isinstance(cell.question, OptionsQuestion)  # "": no option selected
        row.update(answer_code=outcome.code if outcome.code or listed else None)
        row.update(answer_text=outcome.text)
        interview.answers[cell.question.id] = _Answer(cell.question, cell.order, outcome)

    def marginals(self) -> pl.DataFrame:
        """Per question and option: how many were asked, the observed share of the answer,
        the expected share (the mean of the distributions the answers were drawn from), and
        per question Pearson's chi-square of the counts against the expected ones and its
        p-value (conservative: draws from different distributions vary less than one
        multinomial)."""
        rows = []
        for question_id in self.questionnaire.listed_order:
            codes = [o.code for o in self.questionnaire.question(question_id).outcomes]
            asked = sum(self.observed.get((question_id, code), 0) for code in codes)
            if not asked:
                continue
            expected = [self.expected.get((question_id, code), 0.0) for code in codes]
            observed = [self.observed.get((question_id, code), 0) for code in codes]
            chi_square = sum(
                (o - e) ** 2 / e for o, e in zip(observed, expected, strict=True) if e > 0
            )
            p_value = chi_square_survival(chi_square, max(len(codes) - 1, 1))
            for code, o, e in zip(codes, observed, expected, strict=True):
                rows.append((question_id, code, asked, o / asked, e / asked, chi_square, p_value))
        return pl.DataFrame(rows, schema=MARGINALS_SCHEMA, orient="row")


@dataclass(frozen=True)
class RespondentsResult:
    """Simulated respondents.

    Attributes:
        microdata: One row per respondent × question (questions in listed order):
            ``respondent_id``, ``persona_id``, ``question_id``, ``block``, ``position``
            (1 = asked first), ``asked``, ``skipped_because`` (the condition that failed),
            ``order`` (the option order shown), ``answer_code`` (the option's code; an
            integer answer's bin), ``answer_text`` (the option's text; the integer), ``prob``
            (the drawn answer's probability), ``model``, ``format``. Skipped questions have
            no answer.
        marginals: Per question and outcome: respondents asked, the observed share, the
            expected share (the mean of the distributions the answers were drawn from), and
            the question's Pearson chi-square and p-value (conservative: draws from
            different distributions vary less than one multinomial).
        manifest: How the sample was made (settings with the seed, allocation, the
            distinct prompts asked, the store's hits and misses).
    """

    microdata: pl.DataFrame
    marginals: pl.DataFrame
    manifest: RunManifest | None = None

    @cached_property
    def wide(self) -> pl.DataFrame:
        """One row per respondent: ``respondent_id``, ``persona_id`` and one column per
        question holding its answer code (a free-text or unbinned numeric answer: its text;
        null where skipped or unusable), in listed order."""
        questions = list(dict.fromkeys(self.microdata["question_id"]))
        return (
            self.microdata.with_columns(answer=pl.coalesce("answer_code", "answer_text"))
            .pivot(on="question_id", index=["respondent_id", "persona_id"], values="answer")
            .select("respondent_id", "persona_id", *questions)
            .sort("respondent_id")
        )

    def summary(self) -> str:
        """The sample in a few lines: respondents, personas, questions asked and skipped,
        and the largest gap between an observed and an expected share."""
        asked = self.microdata.filter(pl.col("asked"))
        gap = float((self.marginals["observed"] - self.marginals["expected"]).abs().max())  # type: ignore[arg-type]
        worst = float(self.marginals["p_value"].min())  # type: ignore[arg-type]
        return (
            f"{self.microdata['respondent_id'].n_unique():,} respondents of "
            f"{self.microdata['persona_id'].n_unique()} personas; {asked.height:,} answers, "
            f"{self.microdata.height - asked.height:,} questions skipped by the flow. "
            f"Marginals against the distributions drawn from: largest gap {gap:.3f} "
            f"(smallest chi-square p-value {worst:.3f})"
        )

    def write_parquet(self, path: str | Path) -> list[Path]:
        """Write the microdata to ``path``, the wide form (``*.wide.parquet``), the marginals
        check (``*.marginals.parquet``) and the manifest beside it, as one set."""
        files = ResultFiles.at(Path(path))
        companions = {
            beside(files.responses, "wide"): self.wide,
            beside(files.responses, "marginals"): self.marginals,
        }
        return write_results(files, self.microdata, companions, self.manifest)

    def export(
        self, path: str | Path, questionnaire: Questionnaire, to: str | None = None
    ) -> Exported:
        """Write the sample for SPSS (``.sav``), Stata (``.dta``), CSV or Parquet (``to``,
        default: from the suffix): one row per respondent with the persona's attributes, a
        ``weight`` column (1 each: the sample is allocated by the personas' weights, so it
        is self-weighting) and a column per question, labelled from ``questionnaire``
        (:func:`~survey_sim.data.export.export_microdata`).

        Raises:
            InputError: ``questionnaire`` is not the one the sample answered (its content
                differs from the manifest's record), or the format cannot hold a name.
        """
        self._check_questionnaire(questionnaire, "export")
        wide = self.wide
        attributes = self._attributes()
        if attributes is not None:
            wide = wide.join(attributes, on="persona_id", how="left", maintain_order="left").select(
                "respondent_id", "persona_id", *attributes.columns[1:], *wide.columns[2:]
            )
        wide = wide.with_columns(weight=pl.lit(1.0)).select(
            "respondent_id", "persona_id", "weight", *wide.columns[2:]
        )
        label = "" if self.manifest is None else f"survey-sim: {self.manifest.model.model_id}"
        return export_microdata(
            wide,
            questionnaire,
            Path(path),
            to,
            file_label=label,
            column_labels={"weight": WEIGHT_LABEL},
        )

    def as_responses(self, questionnaire: Questionnaire) -> HumanResponses:
        """The sample as survey data, to be analysed as a real sample is (``compare``,
        ``compare_joints``, ``evaluate``, the PyMC models): one row per answer given with an
        option code (skipped and unusable questions have none), weight 1 (the sample is
        self-weighting), and the persona's attributes as text columns.

        Raises:
            InputError: ``questionnaire`` is not the one the sample answered.
        """
        self._check_questionnaire(questionnaire, "as_responses")
        answers = self.microdata.filter(pl.col("asked"), pl.col("answer_code").is_not_null())
        frame = answers.select(
            "respondent_id",
            "persona_id",
            weight=pl.lit(1.0),
            question_id="question_id",
            option_code="answer_code",
        )
        attributes = self._attributes()
        if attributes is not None:
            frame = frame.join(attributes, on="persona_id", how="left", maintain_order="left")
        model = "" if self.manifest is None else f" of {self.manifest.model.model_id}"
        return HumanResponses(
            frame.drop("persona_id"),
            questionnaire,
            f"simulated respondents{model} (n={self.microdata['respondent_id'].n_unique()})",
        )

    def _check_questionnaire(self, questionnaire: Questionnaire, what: str) -> None:
        record = None if self.manifest is None else self.manifest.questionnaire
        if record is not None and record.sha256 != questionnaire_sha256(questionnaire):
            raise InputError(
                what,
                f"the sample answered questionnaire {record.id!r} as it was then; "
                f"{questionnaire.id!r} here differs from it (edited since?): pass the "
                "questionnaire the sample was drawn from",
            )

    def _attributes(self) -> pl.DataFrame | None:
        """The personas' attributes as text (``persona_id`` first), from the manifest."""
        table = [] if self.manifest is None else self.manifest.population.table
        if not table:
            return None
        attributes = pl.DataFrame(table).drop("weight", "description", strict=False)
        return attributes.rename({"id": "persona_id"}, strict=False).cast(pl.String)

    @classmethod
    def read_parquet(cls, path: str | Path) -> RespondentsResult:
        """Read what :meth:`write_parquet` wrote (``path``: the microdata file)."""
        files = ResultFiles.at(Path(path))
        microdata, manifest = read_results(files, MICRODATA_SCHEMA)
        marginals = read_checked(beside(files.responses, "marginals"), MARGINALS_SCHEMA)
        return cls(microdata, marginals, manifest)
