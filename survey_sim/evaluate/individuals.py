"""How well few-shot individual predictions do on held-out respondents, beside what a social
scientist would try without a language model.

Every method predicts the same thing: a test respondent's answer to a held-out question,
knowing the k answers the split shows (and, where a method uses them, their demographics).

========================= ============================================================
method                    fitted on
========================= ============================================================
``uniform``               nothing: every option equally likely
``marginal``              the baseline pool's answers to the question
``cell``                  the pool's answers within the respondent's demographic cell,
                          shrunk toward the marginal with the weight of one answer per
                          option (cells can be small)
``regression``            per question and k, a multinomial logistic regression on the
                          shown answers (one-hot; a question not shown is all zeros) and
                          the demographics; L2 strength by 5-fold cross-validated
                          log-loss (scikit-learn)
``model``                 nothing: the language model's exact distribution as it is
``model+regression``      per k, the regression's and the model's log-probabilities
                          combined by a multinomial logit with one weight each, fitted on
                          the simulated training respondents: a weight on the model
                          above zero, and a lower held-out log-loss than ``regression``,
                          mean the model adds information the answers and demographics
                          do not carry
``calibrated``            the PyMC calibration (:class:`~survey_sim.analysis.
                          IndividualCalibration`), fitted on the simulated training
                          respondents
========================= ============================================================

Who fits what, so that nothing reported was fitted on what it is scored on: the **test**
respondents are only predicted. The model-free methods are fitted on the **baseline pool**:
every other respondent in the data who would have been eligible for the split (as many
answers and every demographic: :meth:`~survey_sim.data.splits.IndividualSplit.pool`), except
the simulated training respondents (so the regression's predictions for those are out of
sample when ``model+regression`` weighs them).
The model-based fits use the **simulated training respondents**.

Metrics per method and k, each with a bootstrap interval over test respondents: log-loss
(nats, mean −log p(answer)), accuracy (the most likely option is the answer; options tied
for most likely share the credit, so a uniform prediction scores 1/n), Brier score
(squared error of the probability vector), expected calibration error (10 equal-width bins of
the top probability). Binned ECE is biased upward (every bin's |accuracy − confidence| holds
sampling noise), and resampling respondents adds as much again, so a percentile interval sits
above the plain estimate; ECE is therefore reported bias-corrected by the bootstrap (2 · ECE
− the resamples' mean ECE, at least 0) with the basic bootstrap interval (2 · ECE minus the
resamples' upper and lower percentiles), which holds it; its paired differences likewise.
The population view averages each method's predictions per question over the test
respondents and compares them with those respondents' real answers (Jensen-Shannon, total
variation, representativeness; see :mod:`survey_sim.evaluate.metrics`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import polars as pl

from survey_sim._distribution import PROBABILITY_FLOOR
from survey_sim._progress import tqdm
from survey_sim.data.responses import HumanResponses
from survey_sim.data.splits import IndividualSplit, seeded_rng
from survey_sim.errors import InputError
from survey_sim.evaluate.metrics import noise_floor, score_rows
from survey_sim.evaluate.paired import bootstrap_weights, interval_of, verdict
from survey_sim.questionnaire import ChoiceQuestion
from survey_sim.runs.individuals import HeldOutRows, IndividualResult

if TYPE_CHECKING:
    import arviz as az

    from survey_sim.analysis.backend import SamplingOptions

METHODS = (
    "uniform",
    "marginal",
    "cell",
    "regression",
    "model",
    "model+regression",
    "calibrated",
)
METRICS = ("log_loss", "accuracy", "brier", "ece")
ECE_BINS = 10
TIE_TOLERANCE = 1e-12
"""Probabilities this close to the top one tie with it (accuracy counts ties fairly)."""
MAX_POOL = 3000
"""Most baseline-pool respondents a regression is fitted on, per question (sampled)."""


@dataclass(frozen=True)
class IndividualEvaluation:
    """What :func:`evaluate_individuals` found.

    Attributes:
        report: One row per method × k × metric: ``method``, ``shots``, ``metric``,
            ``estimate`` (over the test respondents' held-out answers), ``lower`` and
            ``upper`` (bootstrap interval over respondents), ``rows`` (answers scored),
            ``respondents``.
        differences: Every pair of methods compared on the same test respondents (paired
            bootstrap, the same resamples as ``report``): one row per pair × k × metric,
            ``method`` − ``versus`` as ``difference`` with ``lower``/``upper``, and
            ``verdict`` (``better``/``worse`` for ``method`` when the interval excludes 0,
            else ``no clear difference``).
        population: One row per method × k × metric of the population view: predictions
            averaged per question over the test respondents, against their real answers
            (``jensen_shannon``, ``total_variation``, ``representativeness``; mean over
            questions, ``questions`` counted), with bootstrap intervals over respondents;
            ``noise_floor`` rows give what the true distribution itself would score against
            so few answers per question (a few to a few dozen: read these rows before
            reading differences between methods).
        predictions: One row per method × test respondent × k × question × option: ``prob``
            and ``answer`` (the real option code).
        calibration: The PyMC fit behind ``calibrated`` (``None`` when not asked for):
            ``alpha`` over ``shots`` says how far to trust the model's individual log-odds.
        pool: Respondents in the baseline pool.
    """

    report: pl.DataFrame
    differences: pl.DataFrame
    population: pl.DataFrame
    predictions: pl.DataFrame
    calibration: az.InferenceData | None
    pool: int


def evaluate_individuals(
    result: IndividualResult,
    human: HumanResponses,
    *,
    methods: Sequence[str] = METHODS,
    bootstrap: int = 1000,
    interval: float = 0.9,
    seed: int = 0,
    progress: bool = True,
    sampling: SamplingOptions | None = None,
    weighted_data: Literal["refuse", "ignore"] = "refuse",
) -> IndividualEvaluation:
    """Score every method on the test respondents' held-out answers (module docstring).

    Args:
        result: A few-shot simulation with training and test respondents
            (:func:`~survey_sim.runs.individuals.simulate_individuals`).
        human: The human data it was made from.
        methods: Which of :data:`METHODS` to run (``calibrated`` needs the analysis extra
            and a PyMC fit of a minute or so).
        bootstrap: Resamples of test respondents behind each interval.
        interval: Width of the central intervals.
        seed: Seed of the baselines' training draws and of the bootstrap.
        progress: Show a progress bar over the regressions.
        sampling: NUTS settings of the calibration fit (``SamplingOptions`` keys).
        weighted_data: Every test respondent counts once (unweighted baselines, metrics
            and bootstrap); weighted data are refused unless ``"ignore"`` accepts that.

    Raises:
        InputError: an unknown method, results of other human data, or weighted data
            (``weighted_data="refuse"``).
    """
    human.refuse_weights(weighted_data, "the individual evaluation")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise InputError(
            "evaluation", f"unknown method {', '.join(unknown)} (methods: {', '.join(METHODS)})"
        )
    split = result.split
    source = result.manifest.human.source if result.manifest.human else None
    if source is not None and source != human.source:
        raise InputError(human.source, f"the results were simulated from {source!r}, not this data")
    train, test = HeldOutRows.of(result, "train", human), HeldOutRows.of(result, "test", human)
    pool = _Pool(human, split, seed)
    predicted: dict[str, list[np.ndarray]] = {}
    regression: dict[str, list[np.ndarray]] = {}
    if {"regression", "model+regression"} & set(methods):
        # Training rows are predicted only for model+regression, which weighs them.
        roles = {"test": test, **({"train": train} if "model+regression" in methods else {})}
        questions = sorted({q for rows in roles.values() for q in rows.questions})
        fits = pool.regressions(split.shots, questions, progress=progress)
        regression = {role: fits.predict(rows, human) for role, rows in roles.items()}
    for method in methods:
        match method:
            case "uniform":
                predicted[method] = [np.full(len(p), 1 / len(p)) for p in test.model_logprobs]
            case "marginal":
                predicted[method] = [pool.marginal(q) for q in test.questions]
            case "cell":
                predicted[method] = [
                    pool.cell(q, r) for q, r in zip(test.questions, test.respondents, strict=True)
                ]
            case "regression":
                predicted[method] = regression["test"]
            case "model":
                predicted[method] = [np.exp(p) for p in test.model_logprobs]
            case "model+regression":
                predicted[method] = _stacked(train, test, regression)
    calibration = None
    if "calibrated" in methods:
        from survey_sim.analysis.individuals import IndividualCalibration

        model = IndividualCalibration(train, human)
        calibration = model.fit(**(sampling or {}))
        predicted["calibrated"] = model.predict(test)
    weights = bootstrap_weights(len(set(test.respondents)), bootstrap, seed)
    report, differences = _report(predicted, test, weights=weights, interval=interval)
    return IndividualEvaluation(
        report=report,
        differences=differences,
        population=_population_view(
            predicted, test, human, weights=weights, interval=interval, seed=seed
        ),
        predictions=_prediction_frame(predicted, test, human),
        calibration=calibration,
        pool=len(pool.respondents),
    )


class _Pool:
    """The baseline pool (module docstring): its answers, orders and demographics."""

    def __init__(self, human: HumanResponses, split: IndividualSplit, seed: int) -> None:
        pool = set(split.pool(human))
        self.human, self.split, self.seed = human, split, seed
        self.answers: dict[str, dict[str, str]] = {}
        for (respondent, question), code in human.answers.items():
            if respondent in pool:
                self.answers.setdefault(respondent, {})[question] = code
        if not self.answers:
            raise InputError(
                human.source,
                "no respondent is left for the baselines outside the simulated ones who "
                "answered as many questions as they did",
            )
        self.respondents = sorted(self.answers)
        demographics = list(split.demographics)
        people = human.frame.unique("respondent_id").select("respondent_id", *demographics)
        self.demographics = {
            row["respondent_id"]: tuple(row[name] for name in demographics)
            for row in people.iter_rows(named=True)
        }
        self.encoder = _Encoder(human, demographics, people)
        self._shares: dict[tuple[str, tuple[str, ...] | None], np.ndarray] = {}

    def _counts(self, question_id: str, who: Sequence[str] | None = None) -> np.ndarray:
        question = self.human.questionnaire.question(question_id)
        assert isinstance(question, ChoiceQuestion)
        codes = [o.code for o in question.options]
        counts = np.zeros(len(codes))
        for respondent in self.respondents if who is None else who:
            code = self.answers.get(respondent, {}).get(question_id)
            if code is not None:
                counts[codes.index(code)] += 1
        return counts

    def marginal(self, question_id: str) -> np.ndarray:
        """The pool's answer shares (plus half an answer per option, so none is zero)."""
        if (question_id, None) not in self._shares:
            counts = self._counts(question_id) + 0.5
            self._shares[(question_id, None)] = counts / counts.sum()
        return self._shares[(question_id, None)]

    def cell(self, question_id: str, respondent: str) -> np.ndarray:
        """Shares within the respondent's demographic cell, shrunk toward the marginal."""
        cell = self.demographics[respondent]
        if (question_id, cell) not in self._shares:
            members = [r for r in self.respondents if self.demographics.get(r) == cell]
            counts = self._counts(question_id, members)
            prior = self.marginal(question_id) * len(counts)
            self._shares[(question_id, cell)] = (counts + prior) / (counts.sum() + prior.sum())
        return self._shares[(question_id, cell)]

    def regressions(
        self, shots: Sequence[int], questions: Sequence[str], *, progress: bool
    ) -> _Regressions:
        """One cross-validated multinomial logistic regression per question and k."""
        from sklearn.linear_model import LogisticRegressionCV

        fits = {}
        with tqdm(
            total=len(shots) * len(questions), desc="Regressions", disable=not progress, leave=False
        ) as bar:
            for question_id in questions:
                answered = [r for r in self.respondents if question_id in self.answers[r]]
                if len(answered) > MAX_POOL:
                    rng = seeded_rng(self.seed, f"pool of {question_id}")
                    answered = sorted(rng.choice(answered, MAX_POOL, replace=False).tolist())
                orders = {
                    r: [
                        q
                        for q in seeded_rng(self.seed, r)
                        .permutation(sorted(self.answers[r]))
                        .tolist()
                        if q != question_id
                    ]
                    for r in answered
                }
                labels = np.array([self.answers[r][question_id] for r in answered])
                for k in shots:
                    features = self.encoder.matrix(
                        [({q: self.answers[r][q] for q in orders[r][:k]}, r) for r in answered]
                    )
                    if len(set(labels)) < 2:
                        fits[(question_id, k)] = _Constant(labels[0])
                    else:
                        fits[(question_id, k)] = LogisticRegressionCV(
                            Cs=8,
                            cv=5,
                            l1_ratios=(0.0,),
                            scoring="neg_log_loss",
                            max_iter=2000,
                            use_legacy_attributes=False,
                        ).fit(features, labels)
                    bar.update()
        return _Regressions(fits, self.encoder, self.split)


class _Constant:
    """A regression whose training answers were all one option."""

    def __init__(self, label: str) -> None:
        self.classes_ = np.array([label])

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        return np.ones((len(features), 1))


class _Encoder:
    """One-hot columns: every (question, option) a shown answer can take, then every
    (attribute, value) of the demographics."""

    def __init__(
        self, human: HumanResponses, demographics: list[str], people: pl.DataFrame
    ) -> None:
        columns: list[tuple[str, str]] = [
            (question.id, option.code)
            for question in human.questionnaire
            if isinstance(question, ChoiceQuestion)
            for option in question.options
        ]
        for name in demographics:
            columns += [(f"@{name}", str(v)) for v in sorted(set(people[name].drop_nulls()))]
        self.index = {column: i for i, column in enumerate(columns)}
        self.demographics = {
            row["respondent_id"]: {f"@{name}": row[name] for name in demographics}
            for row in people.iter_rows(named=True)
        }

    def matrix(self, rows: Sequence[tuple[dict[str, str], str]]) -> np.ndarray:
        """Features of (shown answers, respondent) pairs."""
        features = np.zeros((len(rows), len(self.index)))
        for i, (shown, respondent) in enumerate(rows):
            values = {**shown, **self.demographics.get(respondent, {})}
            for key, value in values.items():
                column = self.index.get((key, str(value)))
                if column is not None:
                    features[i, column] = 1.0
        return features


@dataclass(frozen=True)
class _Regressions:
    fits: dict[tuple[str, int], Any]
    encoder: _Encoder
    split: IndividualSplit

    def predict(self, rows: HeldOutRows, human: HumanResponses) -> list[np.ndarray]:
        """Each row's predicted distribution in option order, from exactly the answers the
        split showed at its k."""
        answers = human.answers
        predictions = []
        for respondent, k, question_id in zip(
            rows.respondents, rows.shots, rows.questions, strict=True
        ):
            shown = {q: answers[(respondent, q)] for q in self.split.shown[respondent][:k]}
            fit = self.fits[(question_id, int(k))]
            probs = fit.predict_proba(self.encoder.matrix([(shown, respondent)]))[0]
            question = human.questionnaire.question(question_id)
            assert isinstance(question, ChoiceQuestion)
            by_class = dict(zip(fit.classes_.tolist(), probs, strict=True))
            full = np.maximum(
                [by_class.get(o.code, 0.0) for o in question.options], PROBABILITY_FLOOR
            )
            predictions.append(full / full.sum())
        return predictions


def _stacked(
    train: HeldOutRows, test: HeldOutRows, regression: dict[str, list[np.ndarray]]
) -> list[np.ndarray]:
    """Per k, softmax(a · log regression + b · log model) with (a, b) fitted on the training
    rows by maximum likelihood."""
    from scipy.optimize import minimize

    def combine(weights: np.ndarray, reg: np.ndarray, model: np.ndarray) -> np.ndarray:
        logits: np.ndarray = weights[0] * np.log(reg) + weights[1] * model
        logits -= logits.max()
        p: np.ndarray = np.exp(logits)
        normalised: np.ndarray = p / p.sum()
        return normalised

    fitted: dict[int, np.ndarray] = {}
    for k in sorted(set(train.shots.tolist())):
        index = np.flatnonzero(train.shots == k)

        def loss(weights: np.ndarray, index: np.ndarray = index) -> float:
            return -float(
                sum(
                    np.log(
                        combine(weights, regression["train"][i], train.model_logprobs[i])[
                            train.answers[i]
                        ]
                    )
                    for i in index
                )
            )

        fitted[k] = minimize(loss, np.array([1.0, 0.0]), method="Nelder-Mead").x
    return [
        combine(fitted[int(k)], regression["test"][i], test.model_logprobs[i])
        for i, k in enumerate(test.shots)
    ]


def _row_scores(probs: np.ndarray, answer: int) -> tuple[float, float, float, float]:
    """(−log p(answer), correct, Brier, top probability) of one prediction. A prediction
    whose top probability is shared by several options picks one of them at random:
    ``correct`` is its expected value (1/3 for a uniform prediction over three options, not
    whether the first tied option happens to be the answer)."""
    floored = np.maximum(probs, PROBABILITY_FLOOR)
    floored = floored / floored.sum()
    onehot = np.zeros(len(probs))
    onehot[answer] = 1.0
    top = np.flatnonzero(probs >= probs.max() - TIE_TOLERANCE)
    correct = float(answer in top) / len(top)
    return (
        float(-np.log(floored[answer])),
        correct,
        float(((probs - onehot) ** 2).sum()),
        float(probs.max()),
    )


def _report(
    predicted: dict[str, list[np.ndarray]],
    test: HeldOutRows,
    *,
    weights: np.ndarray,
    interval: float,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Metrics per method and k with bootstrap intervals over respondents (``weights``:
    draws per respondent per resample), and the paired differences between methods."""
    position = {r: i for i, r in enumerate(sorted(set(test.respondents)))}
    rows = []
    estimates: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}
    for method, predictions in predicted.items():
        for k in sorted(set(test.shots.tolist())):
            index = np.flatnonzero(test.shots == k)
            # Per respondent: rows, sums of log-loss, correct, Brier, and per ECE bin the
            # count, summed confidence and summed correctness.
            sums = np.zeros((len(position), 4 + 3 * ECE_BINS))
            for i in index:
                nll, correct, brier, confidence = _row_scores(predictions[i], int(test.answers[i]))
                r = position[test.respondents[i]]
                bin_ = min(int(confidence * ECE_BINS), ECE_BINS - 1)
                sums[r, :4] += (1, nll, correct, brier)
                sums[r, 4 + 3 * bin_ : 7 + 3 * bin_] += (1, confidence, correct)
            estimate = _metrics(sums.sum(axis=0, keepdims=True))[0]
            resampled = _metrics(weights @ sums)
            estimates[method, k] = estimate, resampled
            for m, name in enumerate(METRICS):
                value, lower, upper = _bootstrap_summary(
                    float(estimate[m]), resampled[:, m], interval, name, floor=0.0
                )
                rows.append(
                    {
                        "method": method,
                        "shots": k,
                        "metric": name,
                        "estimate": value,
                        "lower": lower,
                        "upper": upper,
                        "rows": len(index),
                        "respondents": len({test.respondents[i] for i in index}),
                    }
                )
    differences = []
    for first, second in itertools.combinations(predicted, 2):
        for k in sorted(set(test.shots.tolist())):
            (estimate_a, resampled_a), (estimate_b, resampled_b) = (
                estimates[first, k],
                estimates[second, k],
            )
            for m, name in enumerate(METRICS):
                difference, lower, upper = _bootstrap_summary(
                    float(estimate_b[m] - estimate_a[m]),
                    resampled_b[:, m] - resampled_a[:, m],
                    interval,
                    name,
                )
                differences.append(
                    {
                        "method": second,
                        "versus": first,
                        "shots": k,
                        "metric": name,
                        "difference": difference,
                        "lower": lower,
                        "upper": upper,
                        "verdict": verdict(name, lower, upper),
                    }
                )
    return pl.DataFrame(rows), pl.DataFrame(
        differences,
        schema={
            "method": pl.String,
            "versus": pl.String,
            "shots": pl.Int64,
            "metric": pl.String,
            "difference": pl.Float64,
            "lower": pl.Float64,
            "upper": pl.Float64,
            "verdict": pl.String,
        },
    )


def _bootstrap_summary(
    estimate: float,
    resampled: np.ndarray,
    interval: float,
    metric: str,
    *,
    floor: float | None = None,
) -> tuple[float, float, float]:
    """A metric's reported estimate and interval from its plain estimate and its resamples:
    the percentile interval, or for ECE the bootstrap bias correction with the basic
    interval (module docstring), held at ``floor`` or above."""
    lower, upper = interval_of(resampled, interval)
    if metric == "ece":
        estimate, lower, upper = (
            2 * estimate - float(resampled.mean()),
            2 * estimate - upper,
            2 * estimate - lower,
        )
    if floor is not None:
        estimate, lower, upper = (max(floor, value) for value in (estimate, lower, upper))
    return estimate, lower, upper


def _metrics(totals: np.ndarray) -> np.ndarray:
    """(log-loss, accuracy, Brier, ECE) from summed rows (one set of totals per line)."""
    n = totals[:, 0]
    bins = totals[:, 4:].reshape(len(totals), ECE_BINS, 3)
    ece = np.abs(bins[:, :, 2] - bins[:, :, 1]).sum(axis=1) / n
    return np.stack([totals[:, 1] / n, totals[:, 2] / n, totals[:, 3] / n, ece], axis=1)


POPULATION_METRICS = ("jensen_shannon", "total_variation", "representativeness")


def _population_view(
    predicted: dict[str, list[np.ndarray]],
    test: HeldOutRows,
    human: HumanResponses,
    *,
    weights: np.ndarray,
    interval: float,
    seed: int,
) -> pl.DataFrame:
    """Predictions averaged per question over test respondents, against their answers, with
    bootstrap intervals over respondents; and per k the ``noise_floor`` rows: what the
    test respondents' true distribution would score against so few answers."""
    position = {r: i for i, r in enumerate(sorted(set(test.respondents)))}
    rng = seeded_rng(seed, "noise floor")
    rows = []
    for k in sorted(set(test.shots.tolist())):
        at_k = np.flatnonzero(test.shots == k)
        questions = sorted({test.questions[i] for i in at_k})
        per_method: dict[str, dict[str, list[np.ndarray]]] = {
            method: {name: [] for name in POPULATION_METRICS} for method in predicted
        }
        floors: dict[str, list[float]] = {name: [] for name in POPULATION_METRICS}
        for question_id in questions:
            index = [i for i in at_k if test.questions[i] == question_id]
            question = human.questionnaire.question(question_id)
            assert isinstance(question, ChoiceQuestion)
            answers = np.eye(len(question.options))[test.answers[index]]
            drawn = np.vstack(
                [np.ones(len(index)), weights[:, [position[test.respondents[i]] for i in index]]]
            )  # first line: the sample itself; then one line per resample
            counted = drawn.sum(axis=1, keepdims=True)
            present = counted[:, 0] > 0
            people = (drawn @ answers)[present] / counted[present]
            floor = noise_floor(question, people[0], len(index), resamples=200, rng=rng)
            for name in POPULATION_METRICS:
                floors[name].append(floor[name])
            for method, predictions in predicted.items():
                simulated = (drawn @ np.array([predictions[i] for i in index]))[present]
                scored = score_rows(question, people, simulated / counted[present])
                for name in POPULATION_METRICS:
                    full = np.full(len(drawn), np.nan)
                    full[present] = scored[name]
                    per_method[method][name].append(full)
        for method, by_metric in per_method.items():
            for name, values in by_metric.items():
                means = np.nanmean(np.vstack(values), axis=0)
                lower, upper = interval_of(means[1:], interval)
                rows.append(
                    {
                        "method": method,
                        "shots": k,
                        "metric": name,
                        "estimate": float(means[0]),
                        "lower": lower,
                        "upper": upper,
                        "questions": len(questions),
                    }
                )
        for name, floor_scores in floors.items():
            rows.append(
                {
                    "method": "noise_floor",
                    "shots": k,
                    "metric": name,
                    "estimate": float(np.mean(floor_scores)),
                    "lower": None,
                    "upper": None,
                    "questions": len(questions),
                }
            )
    return pl.DataFrame(
        rows,
        schema={
            "method": pl.String,
            "shots": pl.Int64,
            "metric": pl.String,
            "estimate": pl.Float64,
            "lower": pl.Float64,
            "upper": pl.Float64,
            "questions": pl.Int64,
        },
    )


def _prediction_frame(
    predicted: dict[str, list[np.ndarray]], test: HeldOutRows, human: HumanResponses
) -> pl.DataFrame:
    rows = []
    for method, predictions in predicted.items():
        for i, probs in enumerate(predictions):
            question = human.questionnaire.question(test.questions[i])
            assert isinstance(question, ChoiceQuestion)
            answer = question.options[int(test.answers[i])].code
            for option, prob in zip(question.options, probs, strict=True):
                rows.append(
                    {
                        "method": method,
                        "respondent_id": test.respondents[i],
                        "shots": int(test.shots[i]),
                        "question_id": test.questions[i],
                        "option_code": option.code,
                        "prob": float(prob),
                        "answer": answer,
                    }
                )
    return pl.DataFrame(rows)
