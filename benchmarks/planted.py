"""Does the pipeline see a persona signal when there is one? A model trained to *be* a known
process, run through what a user runs, each planted quantity checked.

    python benchmarks/planted.py [--steps 3000] [--respondents 3000] [--seed 0] [--results DIR]

1. The planted survey (``survey_sim.planted``: 8 ordinal items, party × age × sex, main
   effects, one interaction, a latent trait on two items, a null item) and a small model
   trained from scratch on its exact cell distributions and on sampled interviews (each
   question's exact distribution given the earlier answers), in a curriculum: the two trait
   items alone first, then with pairs that do not share the trait and interviews with other
   items between the trait items; how closely the model's exact distributions match the
   planted ones (total variation per cell × item).
2. A sample of respondents drawn from the process (the "people"), and the user's pipeline
   on it: persona cells post-stratified to the sample, ``simulate``, ``compare`` (with the
   baselines and paired differences), subgroup means by party and by party × age, the PyMC
   ``Calibration`` and ``Subgroups`` models on the six items of one scale.
3. A table of planted quantities: the planted value, what the simulation gives, what the
   sample gives with a 90% bootstrap interval over respondents, and whether the interval
   covers the planted value and the simulated one; for the PyMC models, alpha (1: the
   simulation is right as it is) with its 94% HDI.
4. Few-shot individuals and ``evaluate`` on ``welfare`` after k answers (``taxes``, which
   shares its latent trait, first): log-loss of every method beside the process's own
   conditional distribution, and paired differences (model+regression − regression).
5. Exact joints of three pairs (the latent trait's, a null pair, a pair associated through
   the cells only) for the trained model and a perfect simulator against the sample:
   tau-b with intervals, ``compare_joints``' verdicts, the PyMC ``Association`` model, and
   how often the sample's intervals cover the planted tau-b.
6. Simulated respondents, without and with memory, as a sample of their own: the planted
   quantities and the pairs' tau-b with intervals, and whether they cover the planted values.

Writes ``results/planted.md`` and ``planted.csv``.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import polars as pl

RESULTS = Path(__file__).with_name("results")
PARTIES = ("a Democrat", "a Republican")


def sample_means(human, by: list[str], weights: np.ndarray | None = None) -> pl.DataFrame:  # type: ignore[no-untyped-def]
    """Mean option position per ``by`` group and item (respondents weighted by ``weights``,
    one per respondent in sorted order; none: 1 each)."""
    frame = human.frame.with_columns(score=pl.col("option_code").cast(pl.Int64))
    if weights is not None:
        ids = frame["respondent_id"].unique().sort()
        frame = frame.join(
            pl.DataFrame({"respondent_id": ids, "w": weights}), on="respondent_id"
        ).with_columns(weight=pl.col("weight") * pl.col("w"))
    return frame.group_by(*by, "question_id").agg(
        mean=(pl.col("score") * pl.col("weight")).sum() / pl.col("weight").sum()
    )


def simulated_means(result, by: list[str]) -> pl.DataFrame:  # type: ignore[no-untyped-def]
    """Mean option position per ``by`` group and item in the simulation."""
    groups = result.subgroups(by)
    return groups.group_by(*by, "question_id").agg(
        mean=(pl.col("prob") * pl.col("option_code").cast(pl.Int64)).sum() / pl.col("prob").sum()
    )


def lookup(means: pl.DataFrame):  # type: ignore[no-untyped-def]
    """``mean(item, **fixed)`` over a means table (the groups it was computed by)."""

    def mean(item: str, **fixed: str) -> float:
        rows = means.filter(
            pl.col("question_id") == item, *(pl.col(k) == v for k, v in fixed.items())
        )
        assert rows.height == 1, (item, fixed, rows)
        return float(rows["mean"][0])

    return mean


def quantities(survey, means_party: pl.DataFrame, means_cells: pl.DataFrame) -> dict[str, float]:  # type: ignore[no-untyped-def]
    from survey_sim.planted import INTERACTION, interaction_contrast, party_gaps

    gaps = party_gaps(lookup(means_party), list(survey.items))
    values = {f"party gap in mean score: {item}": gap for item, gap in gaps.items()}
    values[INTERACTION] = interaction_contrast(lookup(means_cells))
    return values


def sample_intervals(
    survey, people, bootstrap: int, seed: int
) -> dict[str, tuple[float, float, float]]:  # type: ignore[no-untyped-def]
    """Each planted quantity as the sample estimates it, with a 90% bootstrap interval over
    respondents: name → (estimate, lower, upper)."""
    from survey_sim.evaluate.paired import bootstrap_weights, interval_of

    estimate = quantities(
        survey, sample_means(people, ["party"]), sample_means(people, ["party", "age"])
    )
    respondents = people.frame["respondent_id"].n_unique()
    resampled = [
        quantities(
            survey,
            sample_means(people, ["party"], w),
            sample_means(people, ["party", "age"], w),
        )
        for w in bootstrap_weights(respondents, bootstrap, seed).astype(float)
    ]
    return {
        name: (value, *interval_of(np.array([r[name] for r in resampled]), 0.9))
        for name, value in estimate.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--steps", type=int, default=3000, help="training steps on every example, after the warm-up"
    )
    parser.add_argument(
        "--learning-rate", type=float, default=5e-4, help="peak of their one-cycle schedule"
    )
    parser.add_argument("--respondents", type=int, default=3000, help="sampled people")
    parser.add_argument("--bootstrap", type=int, default=500, help="resamples of respondents")
    parser.add_argument(
        "--simulated-respondents",
        type=int,
        default=3000,
        help="simulated respondents, without and with memory",
    )
    parser.add_argument("--draws", type=int, default=1000, help="PyMC draws and tuning steps")
    parser.add_argument(
        "--interviews",
        type=int,
        default=10,
        help="training interviews of random length per persona cell",
    )
    parser.add_argument(
        "--trait-interviews",
        type=int,
        default=60,
        help="training interviews of the two trait items alone, per persona cell",
    )
    parser.add_argument(
        "--null-pairs",
        type=int,
        default=60,
        help="training interviews of two items that do not share the trait, per persona cell",
    )
    parser.add_argument(
        "--gap-interviews",
        type=int,
        default=10,
        help="training interviews with other items between the two trait items, per cell",
    )
    parser.add_argument(
        "--warm-up-steps",
        type=int,
        default=2500,
        help="at most this many first steps on the trait interviews alone (0: no warm-up)",
    )
    parser.add_argument(
        "--warm-up-kl",
        type=float,
        default=0.003,
        help="the warm-up ends when the trait interviews' mean KL falls below this (nats)",
    )
    parser.add_argument(
        "--warm-up-rate", type=float, default=2e-3, help="the warm-up's learning rate"
    )
    parser.add_argument("--batch-size", type=int, default=32, help="training examples per step")
    parser.add_argument(
        "--train", type=int, default=100, help="individual mode: training respondents"
    )
    parser.add_argument("--test", type=int, default=400, help="individual mode: test respondents")
    parser.add_argument(
        "--coverage-samples",
        type=int,
        default=20,
        help="more samples of people, to count how often the intervals cover",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the tables")
    args = parser.parse_args()
    import arviz as az

    from survey_sim import (
        TransformersEngine,
        compare,
        paired_differences,
        simulate,
        summarise,
    )
    from survey_sim.analysis import Calibration, Subgroups
    from survey_sim.planted import (
        AGREE_ITEMS,
        ATTRIBUTES,
        PlantedSurvey,
        build_planted_base,
        train_planted_model,
    )

    logging.getLogger("pymc").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=FutureWarning)
    survey = PlantedSurvey()
    lines = ["# A planted persona signal through the pipeline (benchmarks/planted.py)", ""]
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="planted-") as scratch:
        base = build_planted_base(Path(scratch) / "base", survey)
        started = time.time()
        training = train_planted_model(
            base,
            Path(scratch) / "model",
            survey,
            steps=args.steps,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            interviews=args.interviews,
            trait_interviews=args.trait_interviews,
            null_pairs=args.null_pairs,
            gap_interviews=args.gap_interviews,
            warm_up_steps=args.warm_up_steps,
            warm_up_kl=args.warm_up_kl,
            warm_up_rate=args.warm_up_rate,
            seed=args.seed,
        )
        trained_seconds = time.time() - started
        engine = TransformersEngine.from_pretrained(Path(scratch) / "model")
        people = survey.sample(args.respondents, seed=args.seed)
        population = people.population()
        result = simulate(survey.questionnaire, population, engine, progress=False)
        exact = survey.exact()
        # 1. The model against the process, cell by cell.
        distances = survey.cell_distances(result.subgroups(list(ATTRIBUTES)))
        lines += [
            "Model: 4 layers of width 128, trained from scratch "
            f"({training.examples} examples, per persona cell: every item; every question, "
            f"given the earlier answers, of {args.trait_interviews} interviews of the two trait "
            f"items alone, {args.null_pairs} of two items that do not share the trait, "
            f"{args.gap_interviews} with other items between the trait items and "
            f"{args.interviews} of random length). First a warm-up on the trait interviews "
            f"alone at learning rate {args.warm_up_rate:g} until their KL fell below "
            f"{args.warm_up_kl:g} ({training.warm_up_steps} steps, at most "
            f"{args.warm_up_steps}), then {args.steps} steps on every example (one-cycle, peak "
            f"{args.learning_rate:g}); {args.batch_size} examples a step, gradients clipped to "
            f"norm 1; {trained_seconds:.0f} s. Final KL {training.final_kl:.4f} nats. "
            "Its exact distributions against the planted ones, "
            f"per cell × item: total variation mean {np.mean(distances):.3f}, max "
            f"{np.max(distances):.3f}.",
            "",
        ]
        rows += [
            {
                "part": "model vs process",
                "quantity": "TV per cell x item, mean",
                "estimate": float(np.mean(distances)),
            },
            {
                "part": "model vs process",
                "quantity": "TV per cell x item, max",
                "estimate": float(np.max(distances)),
            },
        ]
        # 2. compare against the sample and against the process itself.
        comparison = compare(result.population, people)
        paired = paired_differences(comparison, metrics=["jensen_shannon", "total_variation"])
        lines += [f"## compare: the simulation against {args.respondents} sampled people", ""]
        lines += _markdown(
            summarise(comparison).select(
                "source", "jensen_shannon", "total_variation", "representativeness"
            )
        )
        lines += ["", "Paired over the 8 items (model − baseline, 90% interval):", ""]
        lines += _markdown(
            paired.select("versus", "metric", "difference", "lower", "upper", "verdict")
        )
        against_process = summarise(compare(result.population, exact))
        model_row = against_process.filter(pl.col("source") == "model").row(0, named=True)
        lines += [
            "",
            f"Against the process itself (exact population distributions): JS "
            f"{model_row['jensen_shannon']:.4f}, TV {model_row['total_variation']:.4f}.",
            "",
        ]
        # 3. Planted quantities.
        planted = dict(survey.planted_quantities().select("quantity", "planted").iter_rows())
        simulated = quantities(
            survey, simulated_means(result, ["party"]), simulated_means(result, ["party", "age"])
        )
        observed = sample_intervals(survey, people, args.bootstrap, args.seed)
        table = [
            {
                "quantity": name,
                "planted": value,
                "simulated": simulated[name],
                "people": observed[name][0],
                "lower": observed[name][1],
                "upper": observed[name][2],
                "planted covered": observed[name][1] <= value <= observed[name][2],
                "simulated covered": observed[name][1] <= simulated[name] <= observed[name][2],
            }
            for name, value in planted.items()
        ]
        frame = pl.DataFrame(table)
        lines += [
            "## Planted quantities",
            "",
            "people: the sample's estimate with a 90% bootstrap interval over respondents.",
            "",
        ]
        lines += _markdown(frame)
        covered = [
            lower <= planted[name] <= upper
            for seed in range(args.seed + 1, args.seed + 1 + args.coverage_samples)
            for name, (_, lower, upper) in sample_intervals(
                survey, survey.sample(args.respondents, seed=seed), args.bootstrap, seed
            ).items()
        ]
        lines += [
            "",
            f"The same intervals from {args.coverage_samples} more samples of "
            f"{args.respondents} (seeds {args.seed + 1} to {args.seed + args.coverage_samples}) "
            f"cover the planted value {sum(covered)} times of {len(covered)} "
            f"({np.mean(covered):.2f}; nominal 0.90).",
        ]
        rows.append(
            {
                "part": "planted",
                "quantity": "coverage of 90% intervals",
                "estimate": np.mean(covered),
            }
        )
        rows += [
            {
                "part": "planted",
                "quantity": r["quantity"],
                "estimate": r["simulated"],
                "planted": r["planted"],
                "lower": r["lower"],
                "upper": r["upper"],
            }
            for r in table
        ]
        # 4. The PyMC models on the six agree-disagree items: alpha should be 1, for the
        # trained model and for a perfect simulator (the exact process as the simulation),
        # which separates what the pipeline recovers from what the training got wrong.
        exact_party = exact.distribution(["party"]).select(
            "party", "question_id", "option_code", "prob"
        )
        simulations = {
            "trained model": (result.population, result.subgroups(["party"])),
            "perfect simulator": (
                exact.distribution().select("question_id", "option_code", "prob"),
                exact_party,
            ),
        }
        models = []
        for simulation, (population_frame, party_frame) in simulations.items():
            agree = population_frame.filter(pl.col("question_id").is_in(AGREE_ITEMS))
            by_party = party_frame.filter(pl.col("question_id").is_in(AGREE_ITEMS))
            fits = {
                "Calibration": Calibration(agree, people).fit(
                    draws=args.draws, tune=args.draws, seed=args.seed
                ),
                "Subgroups": Subgroups(by_party, people, ["party"]).fit(
                    draws=args.draws, tune=args.draws, seed=args.seed
                ),
            }
            for label, idata in fits.items():
                summary = az.summary(idata, var_names=["alpha"], kind="stats")
                for index, row in summary.iterrows():
                    low, high = row.iloc[2], row.iloc[3]
                    models.append(
                        {
                            "simulation": simulation,
                            "quantity": f"{label} {index}",
                            "planted": 1.0,
                            "mean": row["mean"],
                            "sd": row["sd"],
                            "hdi_low": low,
                            "hdi_high": high,
                            "covered": bool(low <= 1.0 <= high),
                        }
                    )
        lines += ["", "## PyMC models (six agree-disagree items; 94% HDI)", ""]
        lines += _markdown(pl.DataFrame(models))
        rows += [
            {
                "part": "pymc",
                "quantity": m["quantity"],
                "estimate": m["mean"],
                "planted": 1.0,
                "lower": m["hdi_low"],
                "upper": m["hdi_high"],
            }
            for m in models
        ]
        # 5. Few-shot individuals: the latent trait shows only within a respondent.
        individual_lines, individual_rows = individuals(survey, people, engine, args)
        lines += individual_lines
        rows += individual_rows
        # 6. Exact joints: the latent trait as association between two items.
        joint_lines, joint_rows = joints(survey, people, population, engine, args)
        lines += joint_lines
        rows += joint_rows
        # 7. Simulated respondents: a synthetic sample analysed as the people's is.
        respondent_lines, respondent_rows = respondents(survey, population, engine, args)
        lines += [*respondent_lines, ""]
        rows += respondent_rows
    args.results.mkdir(exist_ok=True, parents=True)
    pl.DataFrame(
        rows,
        schema={
            "part": pl.String,
            "quantity": pl.String,
            "estimate": pl.Float64,
            "planted": pl.Float64,
            "lower": pl.Float64,
            "upper": pl.Float64,
        },
    ).write_csv(args.results / "planted.csv")
    text = "\n".join(lines)
    (args.results / "planted.md").write_text(text)
    print(text)


JOINT_PAIRS = (("taxes", "welfare"), ("taxes", "weather"), ("welfare", "guns"))
"""The trait pair (taxes and welfare load on one latent trait), a null pair (weather depends
on nothing) and a pair associated through the cells only (both follow party)."""


def tau_b_rows(simulated, people, args) -> list[dict]:  # type: ignore[no-untyped-def]
    """``compare_joints``' tau-b row per pair: the simulation's (``model``) and the people's
    with its bootstrap interval."""
    from survey_sim import compare_joints

    compared = compare_joints(simulated, people, resamples=args.bootstrap)
    return list(compared.associations.filter(pl.col("measure") == "tau_b").iter_rows(named=True))


def joints(survey, people, population, engine, args) -> tuple[list[str], list[dict]]:  # type: ignore[no-untyped-def]
    """Exact joints of the trained model and of a perfect simulator (the process's own
    joints) against the sample, with tau-b per pair, the Association model, and how often
    the sample's interval covers the process's tau-b over more samples."""
    import arviz as az

    from survey_sim import joint
    from survey_sim.analysis import Association

    process = survey.joints(JOINT_PAIRS)
    simulations = {
        "perfect simulator": process,
        "trained model": joint(
            survey.questionnaire, population, engine, list(JOINT_PAIRS), progress=False
        ),
    }
    compared = {label: tau_b_rows(each, people, args) for label, each in simulations.items()}
    # The perfect simulator's joint is the process's: its tau-b is the planted one.
    planted = {row["pair"]: row["model"] for row in compared["perfect simulator"]}
    table, rows = [], []
    for simulation, simulated in simulations.items():
        posterior = Association(simulated, people).fit(
            draws=args.draws, tune=args.draws, seed=args.seed
        )
        summary = az.summary(posterior, var_names=["difference"], kind="stats")
        for row in compared[simulation]:
            low, high = summary.loc[f"difference[{row['pair']}]"].iloc[2:4]
            table.append(
                {
                    "simulation": simulation,
                    "pair": row["pair"],
                    "planted": planted[row["pair"]],
                    "people": row["people"],
                    "lower": row["people_lower"],
                    "upper": row["people_upper"],
                    "simulated": row["model"],
                    "personas only": row["personas_only"],
                    "verdict": row["verdict"],
                    "Association: difference 94% HDI": f"[{low:+.3f}, {high:+.3f}]",
                }
            )
            rows.append(
                {
                    "part": f"joints, {simulation}",
                    "quantity": f"tau_b {row['pair']}",
                    "estimate": row["model"],
                    "planted": planted[row["pair"]],
                    "lower": row["people_lower"],
                    "upper": row["people_upper"],
                }
            )
    covered = [
        row["people_lower"] <= planted[row["pair"]] <= row["people_upper"]
        for seed in range(args.seed + 1, args.seed + 1 + args.coverage_samples)
        for row in tau_b_rows(process, survey.sample(args.respondents, seed=seed), args)
    ]
    rows.append(
        {"part": "joints", "quantity": "coverage of tau_b intervals", "estimate": np.mean(covered)}
    )
    lines = [
        "",
        "## Exact joints: the latent trait between items",
        "",
        "Kendall's tau-b per pair: `planted`, the process's own joint (population, cells "
        "weighted by their shares); `people`, the sample's, with its 90% basic bootstrap "
        "interval over respondents; `simulated`, the exact joint read from the simulation "
        "(both asking orders averaged) for the post-stratified cells; `personas only`, each "
        "cell's marginals multiplied (what the cells alone give). The Association model's "
        "difference is simulated − people.",
        "",
        *_markdown(pl.DataFrame(table)),
        "",
        f"The sample's tau-b intervals from {args.coverage_samples} more samples cover the "
        f"planted tau-b {sum(covered)} times of {len(covered)} ({np.mean(covered):.2f}; "
        "nominal 0.90).",
    ]
    return lines, rows


RESPONDENT_MEMORIES = ("none", "full")
"""Simulated respondents without memory (each answer given the persona only) and with
``memory: full`` (each answer given the persona and every earlier answer)."""


def respondents(survey, population, engine, args) -> tuple[list[str], list[dict]]:  # type: ignore[no-untyped-def]
    """As many simulated respondents as people, in the questionnaire's order, without and
    with memory, analysed as the people's sample is: the planted quantities and the joint
    pairs' tau-b, each with a 90% bootstrap interval over respondents, and whether it covers
    the planted value."""
    from survey_sim import simulate_respondents

    planted = dict(survey.planted_quantities().select("quantity", "planted").iter_rows())
    process = survey.joints(JOINT_PAIRS)
    table: dict[str, dict[str, object]] = {}
    rows = []
    timing = []
    for memory in RESPONDENT_MEMORIES:
        questionnaire = survey.questionnaire.model_copy(update={"memory": memory})
        started = time.time()
        sample = simulate_respondents(
            questionnaire,
            population,
            engine,
            args.simulated_respondents,
            seed=args.seed,
            progress=False,
            cache=False,
        )
        prompts = sample.manifest.respondents.distinct_prompts
        seconds = time.time() - started
        timing.append(f"memory {memory}: {prompts:,} distinct prompts, {seconds:.0f} s")
        responses = sample.as_responses(questionnaire)
        estimates = {
            name: (value, lower, upper, planted[name])
            for name, (value, lower, upper) in sample_intervals(
                survey, responses, args.bootstrap, args.seed
            ).items()
        }
        for row in tau_b_rows(process, responses, args):
            estimates[f"tau-b {row['pair']}"] = (
                row["people"],
                row["people_lower"],
                row["people_upper"],
                row["model"],
            )
        for name, (value, lower, upper, truth) in estimates.items():
            entry = table.setdefault(name, {"quantity": name, "planted": truth})
            entry[f"memory: {memory}"] = f"{value:.3f} [{lower:.3f}, {upper:.3f}]"
            entry[f"covered ({memory})"] = bool(lower <= truth <= upper)
            rows.append(
                {
                    "part": f"respondents, memory {memory}",
                    "quantity": name,
                    "estimate": value,
                    "planted": truth,
                    "lower": lower,
                    "upper": upper,
                }
            )
    lines = [
        "",
        "## Simulated respondents: a synthetic sample analysed as the people's",
        "",
        f"{args.simulated_respondents} simulated respondents (`simulate_respondents`, allocated "
        "to the post-stratified cells, the questionnaire's order: taxes, welfare, military, "
        "climate, guns, weather, church, online), without memory and with `memory: full` (each "
        "answer drawn given every earlier answer), turned into survey data (`as_responses`) and"
        " analysed as the people's sample is: each planted quantity and each pair's tau-b with "
        "a 90% bootstrap interval over respondents. Without memory, answers are independent "
        "given the persona, so the trait pair's tau-b can only reach what the cells give; with "
        "memory, only a model that carries the trait reaches it. "
        f"({'; '.join(timing)}.)",
        "",
        *_markdown(pl.DataFrame(list(table.values()))),
    ]
    return lines, rows


TRAIT_SHOWN = ("taxes", "military", "climate", "guns", "weather", "church", "online")
"""The individual split's shown answers, in order: ``taxes`` (which shares the latent trait
with the predicted ``welfare``) first, so k = 1 is where the trait's information arrives."""


INDIVIDUAL_METHODS = ("uniform", "marginal", "cell", "regression", "model", "model+regression")
COMPARISONS = (
    ("model", "process"),
    ("model", "regression"),
    ("model+regression", "regression"),
    ("regression", "process"),
)
"""The paired log-loss differences reported (first − second, same test respondents)."""


def individuals(survey, people, engine, args) -> tuple[list[str], list[dict]]:  # type: ignore[no-untyped-def]
    """Few-shot individuals and ``evaluate`` on ``welfare``, for the trained model and for
    a perfect simulator (the process's own conditional distributions as the model's), beside
    the process's conditional distribution (the best any method can do) as a reference."""
    from survey_sim import IndividualResult, IndividualSplit, simulate_individuals

    split = IndividualSplit.draw(
        people,
        held_out=["welfare"],
        shown=list(TRAIT_SHOWN),
        train=args.train,
        test=args.test,
        seed=args.seed,
    )
    result = simulate_individuals(people, engine, split, progress=False, cache=False)
    answers = {
        (respondent, question): int(code) - 1
        for respondent, question, code in people.frame.select(
            "respondent_id", "question_id", "option_code"
        ).iter_rows()
    }
    cells = {
        row["respondent_id"]: {name: row[name] for name in ("party", "age", "sex")}
        for row in people.frame.unique("respondent_id").iter_rows(named=True)
    }
    conditional = {
        (respondent, shots): survey.distribution(
            "welfare",
            cells[respondent],
            {q: answers[(respondent, q)] for q in split.shown[respondent][:shots]},
        )
        for respondent in split.respondents
        for shots in split.shots
    }
    exact = pl.DataFrame(
        [
            {"respondent_id": r, "shots": k, "option_code": str(i + 1), "exact": float(p)}
            for (r, k), probs in conditional.items()
            for i, p in enumerate(probs)
        ],
        schema_overrides={"shots": pl.Int32},
    )
    perfect = IndividualResult(
        result.responses.join(exact, on=["respondent_id", "shots", "option_code"])
        .with_columns(prob=pl.col("exact"), logprob=pl.col("exact").log())
        .drop("exact"),
        split,
        result.manifest,
    )
    text = [
        "",
        "## Few-shot individuals: the latent trait (`simulate_individuals`, `evaluate`)",
        "",
        f"Predicting `welfare` for {len(split.test)} test respondents after k of their answers "
        f"in the order {', '.join(TRAIT_SHOWN)} (taxes, first, shares the latent trait with "
        f"welfare); {len(split.train)} training respondents weigh model+regression. "
        "`process`: the planted process's own conditional distribution given the cell and the "
        "answers shown, the best any method can do. The *perfect simulator* is that "
        "distribution given to `evaluate` as the model's, which separates what `evaluate` "
        "recovers from what the training got wrong. Log-loss in nats, 90% bootstrap "
        "intervals over test respondents.",
    ]
    csv_rows: list[dict] = []
    runs = (
        ("trained model", result, COMPARISONS),
        # The perfect simulator's model is the process: that difference is 0 by construction.
        ("perfect simulator", perfect, COMPARISONS[1:]),
    )
    for label, simulation, comparisons in runs:
        lines, rows = _individual_tables(
            label, simulation, comparisons, people, conditional, answers, args
        )
        text += lines
        csv_rows += rows
    return text, csv_rows


def _individual_tables(label, simulation, comparisons, people, conditional, answers, args):  # type: ignore[no-untyped-def]
    """One simulation's log-loss per method and k, its paired differences, and how far its
    distributions are from the process's."""
    from survey_sim import evaluate_individuals
    from survey_sim.evaluate.paired import bootstrap_weights, interval_of, verdict

    split = simulation.split
    evaluation = evaluate_individuals(
        simulation, people, methods=list(INDIVIDUAL_METHODS), seed=args.seed, progress=False
    )
    answered = evaluation.predictions.filter(pl.col("option_code") == pl.col("answer"))
    losses = answered.with_columns(loss=-pl.col("prob").log()).select(
        "method", "respondent_id", "shots", "loss"
    )
    process = pl.DataFrame(
        [
            {
                "method": "process",
                "respondent_id": respondent,
                "shots": shots,
                "loss": -float(
                    np.log(conditional[(respondent, shots)][answers[(respondent, "welfare")]])
                ),
            }
            for respondent in split.test
            for shots in split.shots
        ],
        schema=losses.schema,
    )
    table = pl.concat([losses, process])
    distance: dict[int, list[float]] = {}
    model = evaluation.predictions.filter(pl.col("method") == "model")
    for (respondent, shots), rows in model.group_by("respondent_id", "shots"):
        probs = rows.sort(pl.col("option_code").cast(pl.Int64))["prob"].to_numpy()
        gap = 0.5 * np.abs(probs - conditional[(str(respondent), int(shots))]).sum()
        distance.setdefault(int(shots), []).append(float(gap))
    test = sorted(split.test)
    weights = bootstrap_weights(len(test), args.bootstrap, args.seed).astype(float)
    log_losses: list[dict] = []
    differences: list[dict] = []
    csv_rows: list[dict] = []
    for shots in split.shots:
        at_k = table.filter(pl.col("shots") == shots)
        per_method = {
            method: at_k.filter(pl.col("method") == method).sort("respondent_id")["loss"].to_numpy()
            for method in [*INDIVIDUAL_METHODS, "process"]
        }
        for method, values in per_method.items():
            lower, upper = interval_of(weights @ values / len(test), 0.9)
            log_losses.append(
                {
                    "k": shots,
                    "method": method,
                    "log_loss": float(values.mean()),
                    "lower": lower,
                    "upper": upper,
                }
            )
            csv_rows.append(
                {
                    "part": f"individuals, {label}",
                    "quantity": f"log-loss k={shots} {method}",
                    "estimate": float(values.mean()),
                    "lower": lower,
                    "upper": upper,
                }
            )
        for first, second in comparisons:
            difference = per_method[first] - per_method[second]
            lower, upper = interval_of(weights @ difference / len(test), 0.9)
            row = {
                "k": shots,
                "difference": f"{first} − {second}",
                "estimate": float(difference.mean()),
                "lower": lower,
                "upper": upper,
                "verdict": verdict("log_loss", lower, upper),
            }
            differences.append(row)
            csv_rows.append(
                {
                    "part": f"individuals, {label}",
                    "quantity": f"log-loss k={shots} {first} - {second}",
                    "estimate": row["estimate"],
                    "lower": lower,
                    "upper": upper,
                }
            )
    csv_rows += [
        {
            "part": f"individuals, {label}",
            "quantity": f"TV model vs process k={k}, mean",
            "estimate": float(np.mean(d)),
        }
        for k, d in sorted(distance.items())
    ]
    lines = [
        "",
        f"### {label} (model-free methods fitted on a pool of {evaluation.pool})",
        "",
        *_markdown(pl.DataFrame(log_losses)),
        "",
        "The model's distribution against the process's, per test respondent (total "
        "variation): "
        + "; ".join(
            f"k = {k}: mean {np.mean(d):.3f}, max {np.max(d):.3f}"
            for k, d in sorted(distance.items())
        )
        + ".",
        "",
        "Paired differences (same respondents, same resamples; negative: the first is better):",
        "",
        *_markdown(pl.DataFrame(differences)),
    ]
    return lines, csv_rows


def _markdown(frame: pl.DataFrame) -> list[str]:
    def cell(value: object) -> str:
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    return [
        "| " + " | ".join(frame.columns) + " |",
        "|" + "---|" * len(frame.columns),
        *("| " + " | ".join(cell(v) for v in row) + " |" for row in frame.rows()),
    ]


if __name__ == "__main__":
    main()
