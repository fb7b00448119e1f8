"""A survey whose answers come from a known process, and a small model trained on it.

Every fidelity number measured on a real model says how close *that* model is to people; it
cannot say whether survey-sim's pipeline would *see* a persona signal if there were one.
Here the signal is planted: eight ordinal items answered by respondents described by party,
age group and sex, through an ordered-logit process with

* **main effects** of known size (party on most items, age and sex on some),
* **one interaction** (young Republicans care less about the military than the party's
  main effect says),
* **a latent trait** shared by two items (``taxes`` and ``welfare``: correlated within a
  respondent beyond what their demographics explain),
* **a null item** (``weather``: no effect of any attribute, no trait).

:class:`PlantedSurvey` gives the exact answer distribution of every persona cell (the
latent trait integrated out by Gauss-Hermite quadrature, optionally given earlier answers),
draws respondents from the process as :class:`~survey_sim.data.responses.HumanResponses`,
and states the planted quantities (party gaps in mean score, the interaction).
:func:`train_planted_model` trains every weight of a small model on the exact cell
distributions, through the very examples and loss of ``survey-sim tune``'s population
objective, so that the model's exact distributions match the planted ones; the pipeline can
then be run on it and each planted quantity checked (``benchmarks/planted.py``).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedModel

from survey_sim._progress import tqdm
from survey_sim.asking.formats import PromptFormat
from survey_sim.data.mapping import PopulationRecipe
from survey_sim.data.responses import HumanResponses
from survey_sim.engines._hf import HFTokenizer
from survey_sim.engines.registry import load_local_model
from survey_sim.population import Persona
from survey_sim.questionnaire import Questionnaire
from survey_sim.runs.individuals import choice_question
from survey_sim.runs.joints import ASKED_ORDERS, JOINT_SCHEMA, JointResult
from survey_sim.runs.settings import SimulationSettings
from survey_sim.testing import TINY_LAYERS, train_tokenizer
from survey_sim.tune._examples import Example, conditional_examples, population_examples
from survey_sim.tune._objectives import collate, loss, model_slot_logprobs

MeanScore = Callable[..., float]
"""``mean(item_id, **fixed_attributes) -> mean option position``."""

ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "party": ("a Democrat", "an independent", "a Republican"),
    "age": ("aged 18 to 34", "aged 35 to 59", "aged 60 or older"),
    "sex": ("a man", "a woman"),
}
"""The persona attributes and their values (as persona descriptions read them)."""

TEMPLATE = "You are {party}, {age}, and {sex}."
"""How a persona cell is described to the model."""

QUADRATURE_NODES = 40
"""Gauss-Hermite nodes integrating the latent trait out (exact to ~1e-12 here)."""


@dataclass(frozen=True)
class PlantedItem:
    """One item of the process: P(answer ≤ c) = logistic(cutpoints[c] − η), with
    η = Σ effects[attribute][value] + interaction[(party, age)] + loading · trait, the
    trait standard normal, options listed from the lowest to the highest category."""

    id: str
    text: str
    options: tuple[str, ...]
    cutpoints: tuple[float, ...]
    effects: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    interaction: Mapping[tuple[str, str], float] = field(default_factory=dict)
    loading: float = 0.0

    def linear_predictor(self, cell: Mapping[str, str]) -> float:
        """η without the trait, for one persona cell."""
        main = sum(self.effects.get(name, {}).get(value, 0.0) for name, value in cell.items())
        return main + self.interaction.get((cell["party"], cell["age"]), 0.0)

    def probabilities(self, eta: np.ndarray) -> np.ndarray:
        """P(each option) for every η in ``eta`` (η × options)."""
        cumulative = 1 / (1 + np.exp(-(np.array(self.cutpoints)[None, :] - eta[:, None])))
        bounded = np.hstack([np.zeros((len(eta), 1)), cumulative, np.ones((len(eta), 1))])
        probs: np.ndarray = np.diff(bounded, axis=1)
        return probs


AGREE = ("Strongly disagree", "Disagree", "Neither agree nor disagree", "Agree", "Strongly agree")
PARTY_LEFT = {"a Democrat": 1.2, "a Republican": -1.2}

PLANTED_ITEMS: tuple[PlantedItem, ...] = (
    PlantedItem(
        "taxes",
        "The government should raise taxes on people with high incomes.",
        AGREE,
        (-2.0, -0.8, 0.4, 1.8),
        {"party": PARTY_LEFT},
        loading=1.5,
    ),
    PlantedItem(
        "welfare",
        "The government should spend more on helping poor people.",
        AGREE,
        (-1.8, -0.6, 0.6, 2.0),
        {"party": {"a Democrat": 1.0, "a Republican": -1.0}, "sex": {"a woman": 0.3}},
        loading=1.5,
    ),
    PlantedItem(
        "military",
        "The country should spend more on its military.",
        AGREE,
        (-1.6, -0.4, 0.8, 2.0),
        {
            "party": {"a Democrat": -0.6, "a Republican": 1.0},
            "age": {"aged 18 to 34": -0.4, "aged 60 or older": 0.8},
        },
        interaction={("a Republican", "aged 18 to 34"): -1.2},
    ),
    PlantedItem(
        "climate",
        "Climate change is a serious threat to the country.",
        AGREE,
        (-2.2, -1.0, 0.0, 1.4),
        {
            "party": {"a Democrat": 0.9, "a Republican": -0.9},
            "age": {"aged 18 to 34": 0.8, "aged 60 or older": -0.5},
            "sex": {"a woman": 0.3},
        },
    ),
    PlantedItem(
        "guns",
        "Laws covering the sale of firearms should be made more strict.",
        AGREE,
        (-1.8, -0.8, 0.2, 1.4),
        {"party": {"a Democrat": 1.1, "a Republican": -1.1}, "sex": {"a woman": 0.6}},
    ),
    PlantedItem(
        "weather",
        "I prefer cooler weather to warmer weather.",
        AGREE,
        (-1.5, -0.5, 0.5, 1.5),
    ),
    PlantedItem(
        "church",
        "How often do you attend religious services?",
        ("Never", "A few times a year", "About once a month", "Every week", "Several times a week"),
        (-0.6, 0.6, 1.6, 2.8),
        {
            "party": {"a Republican": 0.6},
            "age": {"aged 60 or older": 0.8, "aged 18 to 34": -0.4},
            "sex": {"a woman": 0.3},
        },
    ),
    PlantedItem(
        "online",
        "How many hours a day do you spend on the internet for leisure?",
        ("Less than one", "One to three", "More than three"),
        (-0.8, 0.9),
        {"age": {"aged 18 to 34": 1.2, "aged 60 or older": -1.2}},
    ),
)
"""The eight items: six on one agree-disagree scale (so that the PyMC models, which pool
questions of one scale, can fit them together), one frequency scale of 5 and one of 3;
``weather`` is the null item."""

AGREE_ITEMS = ("taxes", "welfare", "military", "climate", "guns", "weather")


INTERACTION = "interaction: young Republicans on the military"


def party_gaps(mean: MeanScore, items: Sequence[str]) -> dict[str, float]:
    """Democrat − Republican in mean score per item, from a planted or an estimated mean."""
    return {
        item: mean(item, party="a Democrat") - mean(item, party="a Republican") for item in items
    }


def interaction_contrast(mean: MeanScore) -> float:
    """(Republican − Democrat among the 18-34s) − (Republican − Democrat among the 60+) on
    ``military``, from a planted or an estimated mean score."""

    def gap(age: str) -> float:
        return mean("military", party="a Republican", age=age) - mean(
            "military", party="a Democrat", age=age
        )

    return gap("aged 18 to 34") - gap("aged 60 or older")


class PlantedSurvey:
    """The process (module docstring): exact distributions, draws, planted quantities.

    Args:
        items: The items (default :data:`PLANTED_ITEMS`).
        cell_shares: Each persona cell's share of the population (keys: (party, age, sex));
            default: unequal shares that make post-stratification matter.
    """

    def __init__(
        self,
        items: Sequence[PlantedItem] = PLANTED_ITEMS,
        cell_shares: Mapping[tuple[str, ...], float] | None = None,
    ) -> None:
        self.items = {item.id: item for item in items}
        cells = list(itertools.product(*ATTRIBUTES.values()))
        if cell_shares is None:
            raw = {cell: 1.0 + 0.5 * (i % 3) for i, cell in enumerate(cells)}
        else:
            raw = dict(cell_shares)
        total = sum(raw.values())
        self.shares = {cell: raw[cell] / total for cell in cells}
        nodes, weights = np.polynomial.hermite_e.hermegauss(QUADRATURE_NODES)
        self._nodes, self._weights = nodes, weights / math.sqrt(2 * math.pi)

    @property
    def trait_items(self) -> tuple[str, ...]:
        """The items that load on the latent trait (their answers are correlated within a
        respondent beyond the cell)."""
        return tuple(item.id for item in self.items.values() if item.loading)

    @property
    def questionnaire(self) -> Questionnaire:
        """The items as an ordinal questionnaire (option codes 1, 2, ... from the lowest)."""
        return Questionnaire.model_validate(
            {
                "id": "planted",
                "title": "A survey with a planted persona signal",
                "questions": [
                    {
                        "id": item.id,
                        "kind": "ordinal",
                        "text": item.text,
                        "options": [
                            {"code": str(i + 1), "text": text}
                            for i, text in enumerate(item.options)
                        ],
                    }
                    for item in self.items.values()
                ],
            }
        )

    @staticmethod
    def cell_of(key: Sequence[str]) -> dict[str, str]:
        """A cell's attributes from its (party, age, sex) values."""
        return dict(zip(ATTRIBUTES, key, strict=True))

    def distribution(
        self, item_id: str, cell: Mapping[str, str], given: Mapping[str, int] | None = None
    ) -> np.ndarray:
        """P(each option of ``item_id``) for ``cell``, the trait integrated out; with
        ``given`` (item id → option index already answered), conditional on those answers
        (the trait's posterior given them)."""
        weights = self._weights.copy()
        for other, answer in (given or {}).items():
            item = self.items[other]
            eta = item.linear_predictor(cell) + item.loading * self._nodes
            weights = weights * item.probabilities(eta)[:, answer]
        item = self.items[item_id]
        eta = item.linear_predictor(cell) + item.loading * self._nodes
        probs: np.ndarray = weights @ item.probabilities(eta) / weights.sum()
        return probs

    def joints(self, pairs: Sequence[tuple[str, str]]) -> JointResult:
        """The process's exact joint of each pair, per cell (the cells as personas weighted
        by their shares), as :func:`~survey_sim.runs.joints.joint` gives a model's: both
        asking orders (equal here: the process's answers do not depend on the order) and
        their average. Items share association through the cell's attributes and, where
        both load on it, the latent trait."""
        rows = []
        for key, share in self.shares.items():
            cell = self.cell_of(key)
            persona = ", ".join(f"{name}={value}" for name, value in cell.items())
            for a, b in pairs:
                first = self.distribution(a, cell)
                table = np.array(
                    [p * self.distribution(b, cell, given={a: i}) for i, p in enumerate(first)]
                )
                second = table.sum(axis=0)
                for (i, j), prob in np.ndenumerate(table):
                    factors = {
                        ASKED_ORDERS[0]: (first[i], prob / first[i]),
                        ASKED_ORDERS[1]: (second[j], prob / second[j]),
                        ASKED_ORDERS[2]: (None, None),
                    }
                    rows += [
                        {
                            "persona_id": persona,
                            "weight": share,
                            "first": a,
                            "second": b,
                            "asked": asked,
                            "first_code": str(i + 1),
                            "second_code": str(j + 1),
                            "prob": float(prob),
                            "first_prob": factor,
                            "conditional_prob": conditional,
                            "model": "planted process",
                            "format": "none",
                        }
                        for asked, (factor, conditional) in factors.items()
                    ]
        return JointResult(pl.DataFrame(rows, schema=JOINT_SCHEMA))

    def population_distribution(self, item_id: str, **fixed: str) -> np.ndarray:
        """P(each option) over the cells matching ``fixed`` attributes, by their shares."""
        matching = [
            (share, self.cell_of(key))
            for key, share in self.shares.items()
            if all(self.cell_of(key)[name] == value for name, value in fixed.items())
        ]
        total = sum(share for share, _ in matching)
        mixed: np.ndarray = sum(  # type: ignore[assignment]
            share / total * self.distribution(item_id, cell) for share, cell in matching
        )
        return mixed

    def mean_score(self, item_id: str, **fixed: str) -> float:
        """The expected option position (1 = lowest) over the cells matching ``fixed``."""
        probs = self.population_distribution(item_id, **fixed)
        return float(probs @ np.arange(1, len(probs) + 1))

    def planted_quantities(self) -> pl.DataFrame:
        """What the pipeline must recover: per item, the Democrat − Republican gap in mean
        score; and the interaction: the Republican − Democrat military gap among the young
        minus that among the rest (difference in differences)."""
        gaps = party_gaps(self.mean_score, list(self.items))
        return pl.DataFrame(
            [
                {"quantity": f"party gap in mean score: {item}", "item": item, "planted": gap}
                for item, gap in gaps.items()
            ]
            + [
                {
                    "quantity": INTERACTION,
                    "item": "military",
                    "planted": interaction_contrast(self.mean_score),
                }
            ]
        )

    def cell_distances(self, cells: pl.DataFrame) -> list[float]:
        """Total variation between a simulation's distribution and the planted one, per
        persona cell × item (``cells``: a result's ``subgroups`` by every attribute)."""
        distances = []
        for key in self.shares:
            cell = self.cell_of(key)
            for item_id in self.items:
                rows = cells.filter(
                    pl.col("question_id") == item_id, *(pl.col(k) == v for k, v in cell.items())
                ).sort(pl.col("option_code").cast(pl.Int64))
                probs = rows["prob"].to_numpy()
                gap = probs / probs.sum() - self.distribution(item_id, cell)
                distances.append(float(0.5 * np.abs(gap).sum()))
        return distances

    def sample(self, respondents: int, seed: int = 0) -> HumanResponses:
        """Respondents drawn from the process: a cell by its share, a trait, then every item
        answered (complete responders)."""
        rng = np.random.default_rng(seed)
        keys = list(self.shares)
        drawn = rng.choice(len(keys), size=respondents, p=[self.shares[k] for k in keys])
        traits = rng.standard_normal(respondents)
        rows = []
        for index, (cell_index, trait) in enumerate(zip(drawn, traits, strict=True)):
            cell = self.cell_of(keys[cell_index])
            for item_id, answer in self.answers(cell, float(trait), rng).items():
                rows.append(
                    {
                        "respondent_id": f"r{index:05d}",
                        "weight": 1.0,
                        "question_id": item_id,
                        "option_code": str(answer + 1),
                        **cell,
                    }
                )
        return self._responses(pl.DataFrame(rows), f"planted sample (n={respondents}, seed {seed})")

    def answers(
        self, cell: Mapping[str, str], trait: float, rng: np.random.Generator
    ) -> dict[str, int]:
        """One respondent's answers (item id → option index) given their cell and trait."""
        answers = {}
        for item in self.items.values():
            eta = np.array([item.linear_predictor(cell) + item.loading * trait])
            answers[item.id] = int(rng.choice(len(item.options), p=item.probabilities(eta)[0]))
        return answers

    def exact(self) -> HumanResponses:
        """The process itself as weighted data: per cell, question and option one pseudo
        respondent weighted by the cell's share × the option's probability, so that every
        cell's (and the population's) weighted distribution is the exact one."""
        rows = []
        for key, share in self.shares.items():
            cell = self.cell_of(key)
            for item_id in self.items:
                for option, prob in enumerate(self.distribution(item_id, cell)):
                    rows.append(
                        {
                            "respondent_id": f"{'|'.join(key)}|{item_id}|{option + 1}",
                            "weight": share * float(prob),
                            "question_id": item_id,
                            "option_code": str(option + 1),
                            **cell,
                        }
                    )
        return self._responses(pl.DataFrame(rows), "planted process (exact)")

    def _responses(self, frame: pl.DataFrame, source: str) -> HumanResponses:
        recipe = PopulationRecipe(by=tuple(ATTRIBUTES), template=TEMPLATE)
        return HumanResponses(frame, self.questionnaire, source=source, recipe=recipe)


def build_planted_base(directory: str | Path, survey: PlantedSurvey | None = None) -> Path:
    """A small random Llama (4 layers of width 128) whose byte-level BPE tokenizer is trained
    on the survey's own texts (persona descriptions, questions, options), saved to
    ``directory``: the starting point of :func:`train_planted_model`."""
    survey = survey or PlantedSurvey()
    texts = [TEMPLATE.format(**PlantedSurvey.cell_of(key)) for key in survey.shares] + [
        " ".join([item.text, *item.options]) for item in survey.items.values()
    ]
    tokenizer = train_tokenizer(texts * 20, vocab_size=3000)
    torch.manual_seed(0)
    layers = {**TINY_LAYERS, "hidden_size": 128, "intermediate_size": 256, "head_dim": 32}
    config = LlamaConfig(
        vocab_size=len(tokenizer), tie_word_embeddings=True, **{**layers, "initializer_range": 0.02}
    )
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return Path(directory)


@dataclass(frozen=True)
class PlantedTraining:
    """How :func:`train_planted_model` went: ``losses`` (mean KL per step, the warm-up's
    first), ``warm_up_steps`` (how many of them the warm-up took), ``final_kl`` (mean KL over
    every example after training, in nats) and the number of ``examples``."""

    losses: list[float]
    warm_up_steps: int
    final_kl: float
    examples: int


InterviewOrder = Callable[["PlantedSurvey", np.random.Generator], list[str]]
"""Which items one training interview asks, in its order."""


def random_interview(survey: PlantedSurvey, rng: np.random.Generator) -> list[str]:
    """2 to all of the items, in a random order."""
    length = int(rng.integers(2, len(survey.items) + 1))
    return [str(item) for item in rng.permutation(list(survey.items))[:length]]


def trait_pair(survey: PlantedSurvey, rng: np.random.Generator) -> list[str]:
    """The trait items alone, in a random order.

    Raises:
        ValueError: the survey does not have exactly two trait items.
    """
    if len(survey.trait_items) != 2:
        raise ValueError(
            f"trait pairs need exactly two items that load on the trait; this survey has "
            f"{len(survey.trait_items)} ({', '.join(survey.trait_items) or 'none'})"
        )
    return [str(item) for item in rng.permutation(list(survey.trait_items))]


def null_pair(survey: PlantedSurvey, rng: np.random.Generator) -> list[str]:
    """Two items that do not share the trait (the second's distribution given the first
    answer is its cell's), in a random order.

    Raises:
        ValueError: every pair of the survey's items shares the trait.
    """
    if len(survey.items) < 2 or len(survey.trait_items) == len(survey.items):
        raise ValueError("null pairs need two items that do not both load on the trait")
    while True:
        pair = [str(item) for item in rng.choice(list(survey.items), 2, replace=False)]
        if not set(pair) <= set(survey.trait_items):
            return pair


def trait_gap(survey: PlantedSurvey, rng: np.random.Generator) -> list[str]:
    """One trait item, 1 to all of the other items, then the other trait item.

    Raises:
        ValueError: the survey does not have two trait items and at least one other item.
    """
    others = [item for item in survey.items if item not in survey.trait_items]
    if not others:
        raise ValueError("gap interviews need an item that does not load on the trait")
    between = [
        str(item) for item in rng.permutation(others)[: int(rng.integers(1, len(others) + 1))]
    ]
    first, second = trait_pair(survey, rng)
    return [first, *between, second]


WARM_UP_WINDOW = 50
"""Warm-up steps over which the KL is averaged to decide that the trait pairs are learned
(and over which the warm-up's learning rate ramps up)."""


def train_planted_model(
    base: str | Path,
    out: str | Path,
    survey: PlantedSurvey | None = None,
    *,
    steps: int = 600,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    interviews: int = 0,
    trait_interviews: int = 0,
    null_pairs: int = 0,
    gap_interviews: int = 0,
    warm_up_steps: int = 0,
    warm_up_kl: float = 0.003,
    warm_up_rate: float = 2e-3,
    format: str = "chat",
    seed: int = 0,
    progress: bool = True,
) -> PlantedTraining:
    """Train every weight of the model in ``base`` until its exact answer distributions
    match ``survey``'s planted ones, and save it to ``out``.

    The examples are ``survey-sim tune``'s population examples (every persona cell × item,
    in the prompt format ``format``, tokenised as the engine scores them) with the exact
    cell distributions as targets, and the loss is its ``kl``. Unlike ``tune``, all weights
    train (no adapter), nothing is held out (the point is a model that *is* the process, not
    an evaluation of tuning), and the options are shown in their listed order only: a model
    this small learns "which position" far sooner than "which option text", so simulate it
    without ``permute`` (reading its answers in other orders would measure that, not the
    pipeline).

    Interviews drawn from the process (a trait, answers, the items of an
    :data:`InterviewOrder`) add examples: every question in them is asked after the earlier
    answers, as the individual mode asks, with the exact distribution given those answers as
    its target (:meth:`PlantedSurvey.distribution` with ``given``), so that the model can
    learn the latent trait, which only shows within a respondent. Per persona cell:
    ``interviews`` of :func:`random_interview`, ``trait_interviews`` of :func:`trait_pair`,
    ``null_pairs`` of :func:`null_pair` and ``gap_interviews`` of :func:`trait_gap`.

    The 4-layer model of :func:`build_planted_base` does not learn to read earlier answers
    from random interviews (3,000 steps: it learned to ignore the history), and forgets it
    when they or null pairs come in too fast (``benchmarks/README.md``). With
    ``warm_up_steps``, training begins on the trait pairs alone, at ``warm_up_rate`` (ramped
    up over :data:`WARM_UP_WINDOW` steps), until their mean KL over the last
    :data:`WARM_UP_WINDOW` steps is below ``warm_up_kl`` or ``warm_up_steps`` are done; then
    come the ``steps`` on every example, on a one-cycle schedule peaking at
    ``learning_rate``. Gradients are clipped to norm 1.

    Raises:
        ValueError: ``warm_up_steps`` without ``trait_interviews``, or an interview kind the
            survey's items cannot make (:func:`trait_pair`, :func:`null_pair`,
            :func:`trait_gap`); before any training.
    """
    survey = survey or PlantedSurvey()
    if warm_up_steps and not trait_interviews:
        raise ValueError("a warm-up trains on the trait interviews: set trait_interviews too")
    exact = survey.exact()
    loaded = load_local_model(base)
    model = loaded.model
    text = HFTokenizer(loaded.tokenizer, model_id=loaded.model_id)
    personas = list(exact.population(list(ATTRIBUTES)))
    prompt_format = SimulationSettings(format=format).prompt_format()
    cells = population_examples(
        exact,
        list(survey.items),
        personas,
        list(ATTRIBUTES),
        prompt_format,
        text,
        text,
        permute=False,
    )

    def drawn(per_cell: int, order: InterviewOrder, stream: int) -> list[list[Example]]:
        return _interview_examples(
            survey, exact, personas, prompt_format, text, per_cell, [seed, stream], order
        )

    trait = drawn(trait_interviews, trait_pair, 1)
    groups = [[example] for example in cells] + trait
    groups += drawn(interviews, random_interview, 0)
    groups += drawn(null_pairs, null_pair, 2)
    groups += drawn(gap_interviews, trait_gap, 3)
    examples = sum(len(group) for group in groups)
    torch.manual_seed(seed)
    model.train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=warm_up_rate, weight_decay=0.0)
    losses: list[float] = []

    def step(batch: list[Example]) -> None:
        value = _mean_kl(model, batch)
        optimiser.zero_grad()
        value.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        losses.append(value.item())

    if warm_up_steps:
        size = min(batch_size, sum(len(group) for group in trait))
        warm_up = _batches(trait, size, random.Random(seed + 1))
        bar = tqdm(range(warm_up_steps), desc="Warming up on the trait pairs", disable=not progress)
        for index in bar:
            for group in optimiser.param_groups:
                group["lr"] = warm_up_rate * min(1.0, (index + 1) / WARM_UP_WINDOW)
            step(next(warm_up))
            recent = float(np.mean(losses[-WARM_UP_WINDOW:]))
            bar.set_postfix(kl=f"{recent:.4f}", refresh=False)
            if index + 1 >= WARM_UP_WINDOW and recent < warm_up_kl:
                break
        bar.close()
    warmed = len(losses)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=learning_rate, total_steps=steps, pct_start=0.1
    )
    batches = _batches(groups, min(batch_size, examples), random.Random(seed))
    bar = tqdm(range(steps), desc="Training the planted model", disable=not progress)
    for _ in bar:
        step(next(batches))
        schedule.step()
        bar.set_postfix(kl=f"{losses[-1]:.4f}", refresh=False)
    model.eval()
    with torch.no_grad():
        chunks = [
            [example for group in groups[i : i + 16] for example in group]
            for i in range(0, len(groups), 16)
        ]
        total = sum(float(_mean_kl(model, chunk)) * len(chunk) for chunk in chunks)
    model.save_pretrained(out)
    loaded.tokenizer.save_pretrained(out)
    return PlantedTraining(
        losses=losses, warm_up_steps=warmed, final_kl=total / examples, examples=examples
    )


def _batches(
    groups: Sequence[list[Example]], size: int, order: random.Random
) -> Iterator[list[Example]]:
    """Batches of at least ``size`` examples, endlessly, each pass over ``groups`` in a new
    order; a group (an interview's questions, which share their rows) stays in one batch."""
    while True:
        batch: list[Example] = []
        for group in order.sample(list(groups), len(groups)):
            batch += group
            if len(batch) >= size:
                yield batch
                batch = []


def _interview_examples(
    survey: PlantedSurvey,
    exact: HumanResponses,
    personas: Sequence[Persona],
    prompt_format: PromptFormat,
    text: HFTokenizer,
    per_cell: int,
    seed: Sequence[int],
    order: InterviewOrder,
) -> list[list[Example]]:
    """``per_cell`` interviews per persona cell, drawn from the process, each asking the
    items ``order`` gives, as its questions' examples with targets given the earlier
    answers."""
    rng = np.random.default_rng(list(seed))
    questions = {
        question.id: choice_question(exact, question.id) for question in survey.questionnaire
    }
    interviews: list[list[Example]] = []
    for persona in personas:
        cell = {name: str(persona.attributes[name]) for name in ATTRIBUTES}
        description = prompt_format.describe(persona)
        for _ in range(per_cell):
            answers = survey.answers(cell, float(rng.standard_normal()), rng)
            asked = order(survey, rng)
            targets = [
                survey.distribution(
                    item, cell, {earlier: answers[earlier] for earlier in asked[:i]}
                )
                for i, item in enumerate(asked)
            ]
            examples = conditional_examples(
                [questions[item] for item in asked],
                [str(answers[item] + 1) for item in asked],
                [tuple(float(p) for p in target) for target in targets],
                description,
                prompt_format,
                text,
                text,
                exact.questionnaire.instructions,
            )
            interviews.append(examples)
    return interviews


def _mean_kl(model: PreTrainedModel, examples: Sequence[Example]) -> torch.Tensor:
    batch = collate(examples)
    return loss("kl", model_slot_logprobs(model, batch), batch)
