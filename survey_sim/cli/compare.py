"""``survey-sim compare``: simulated distributions against real human answers."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from survey_sim._association import ASSOCIATIONS
from survey_sim._io import write_atomic, write_parquet_atomic
from survey_sim.cli._common import (
    PLOT_FILE,
    add_human_arguments,
    add_sampling_arguments,
    check_outputs,
    load_human,
    output_file,
    sampling_options,
)
from survey_sim.data.aligned import shared_questions, simulated_distribution
from survey_sim.data.responses import HumanResponses
from survey_sim.errors import InputError, SurveySimError
from survey_sim.evaluate.joints import compare_joints
from survey_sim.evaluate.metrics import (
    compare,
    compare_subgroups,
    paired_differences,
    shared_subgroups,
    strongest_baseline,
    subgroup_gaps,
    summarise,
)
from survey_sim.evaluate.nonresponse import compare_nonresponse, with_nonresponse
from survey_sim.runs import SimulationResult
from survey_sim.runs.joints import JointResult
from survey_sim.runs.results import ResultFiles, beside

if TYPE_CHECKING:
    import arviz as az

    from survey_sim.analysis import Calibration
    from survey_sim.analysis.backend import SamplingOptions

REPRESENTATIVENESS = (
    "representativeness: 1 - W1/(N-1) over the positions of ordinal items; 1 - total "
    "variation for unordered ones (yes/no, nominal), where every two options are one apart."
)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the command with the ``survey-sim`` parser."""
    comparing = commands.add_parser(
        "compare",
        help="score simulated distributions against real human answers",
        description="Compare the population distribution in RESULTS (written by run or demo) "
        "with human answers: metrics per question beside uniform, human-marginal and "
        "split-half references, and a PNG of the distributions (RESULTS.png). Every "
        "argument is checked before any work, and a failing comparison writes no file.",
    )
    comparing.add_argument("results", type=Path, help="results file (.parquet) from run/demo")
    add_human_arguments(comparing)
    comparing.add_argument(
        "--plot",
        type=PLOT_FILE,
        default=None,
        help="PNG of the distributions (default: RESULTS.png)",
    )
    comparing.add_argument(
        "--out",
        type=output_file(".parquet", "metrics"),
        default=None,
        help="metrics per question as Parquet (with --by also OUT.ATTR.parquet per subgroup "
        "and OUT.ATTR_gaps.parquet; with --joint OUT.joint.parquet and "
        "OUT.associations.parquet; with non-substantive options OUT.nonresponse.parquet)",
    )
    comparing.add_argument(
        "--by",
        default=None,
        metavar="ATTR[,ATTR]",
        help="also score each subgroup of these persona attributes (the human data must have "
        "them too), and the gaps between subgroups among people and in the simulation "
        "(RESULTS.ATTR.png)",
    )
    comparing.add_argument(
        "--calibrate",
        type=int,
        metavar="FOLDS",
        default=None,
        help="also fit the PyMC calibration model, with held-out interval coverage over FOLDS "
        "folds of questions; writes RESULTS.calibration.nc (posterior, ArviZ), "
        ".calibration.parquet (held-out predictions with intervals), "
        ".calibration_summary.parquet and .calibration.png; needs questions with the same "
        "options",
    )
    comparing.add_argument(
        "--joint",
        type=Path,
        metavar="JOINTS",
        default=None,
        help="also score the exact joints of question pairs in JOINTS (.parquet, written by "
        "survey-sim joint) against people's cross-tabs: per pair Jensen-Shannon and total "
        "variation beside independence references and the noise floor, association (Cramér's "
        "V; Kendall's tau-b and the polychoric correlation for ordinal pairs) with bootstrap "
        "intervals; writes RESULTS.joint.png (heat-maps of people, model and difference)",
    )
    comparing.add_argument(
        "--association",
        choices=("auto", *ASSOCIATIONS),
        default="auto",
        help="the association measure of --joint's heat-maps (default: auto, tau_b when a "
        "pair is ordinal, else cramers_v)",
    )
    comparing.add_argument(
        "--substantive",
        action="store_true",
        help="score over the substantive options only: options marked 'substantive: false' "
        "(don't know, refused) and the people who chose them are left out of every score, and "
        "the rest renormalised (default: they count as options). How often the model and "
        "people give them is compared on its own either way",
    )
    add_sampling_arguments(comparing, "--calibrate")
    comparing.add_argument(
        "--verbose", action="store_true", help="the sampler's messages and progress per fit"
    )

    comparing.set_defaults(handler=compare_command)


@dataclass(frozen=True)
class _Study:
    """What a comparison compares, every part checked."""

    result: SimulationResult
    human: HumanResponses
    answers: HumanResponses
    by: list[str]
    by_subgroup: pl.DataFrame | None
    calibration: Calibration | None
    joints: JointResult | None


def compare_command(args: argparse.Namespace) -> int:
    """``survey-sim compare``: check everything, compute everything, then write the files."""
    study = _checked(args)
    comparison = compare(study.result, study.human)
    writes: list[Callable[[], Path]] = [
        lambda: _distribution_plot(study, comparison, args.plot or args.results.with_suffix(".png"))
    ]
    with pl.Config(
        tbl_rows=-1,
        float_precision=3,
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
        tbl_width_chars=120,
    ):
        print(f"{study.human!r}\n\nMean over questions ({SOURCES_EXPLAINED}):")
        print(summarise(comparison))
        print("\nPer question:")
        print(comparison.drop("coverage"))
        print(REPRESENTATIVENESS)
        left_out = [
            q
            for q in study.result.population["question_id"].unique(maintain_order=True)
            if q not in set(comparison["question_id"])
        ]
        if left_out:
            print(f"Not compared (no human answers in {study.human.source}): {', '.join(left_out)}")
        _print_against_baselines(comparison)
        if study.by_subgroup is not None:
            writes += _by_subgroup(study, study.by_subgroup, args)
        if args.out is not None:
            writes.append(lambda: write_parquet_atomic(comparison, args.out))
        writes += _nonresponse(study, set(comparison["question_id"]), args)
        if study.calibration is not None:
            writes += _calibrate(study.calibration, args)
        if study.joints is not None:
            writes += _joint(study, study.joints, args)
    written = _write_all(writes)
    print(f"Wrote {', '.join(str(path) for path in written)}.")
    return 0


SOURCES_EXPLAINED = (
    "human_marginal: the mean human distribution of the other questions with the same "
    "options; fitted_marginal: of the questions the model was tuned on; noise_floor: what "
    "the population's true distribution would score against this many answers"
)


def _print_against_baselines(comparison: pl.DataFrame) -> None:
    """The model against every baseline, paired over questions, and the verdict against the
    strongest."""
    shown = ("jensen_shannon", "total_variation", "representativeness")
    paired = paired_differences(comparison, metrics=shown)
    print(
        "\nModel minus each baseline, mean over the questions both were scored on, with 90% "
        "intervals resampling those questions together (paired):"
    )
    print(
        paired.select(
            "versus",
            "metric",
            "questions",
            "difference",
            interval=pl.format("[{}, {}]", pl.col("lower").round(4), pl.col("upper").round(4)),
            verdict=pl.format("model {}", "verdict").str.replace("model no clear", "no clear"),
        )
    )
    strongest = strongest_baseline(comparison)
    against = paired.filter(
        pl.col("versus") == strongest, pl.col("metric") == "jensen_shannon"
    ).row(0, named=True)
    outcome = {
        "better": "the model beats it",
        "worse": "the model loses to it",
        "no clear difference": "the model neither clearly beats it nor loses to it",
        "too few units": "too few questions to tell whether the model beats it (read the "
        "per-question rows)",
    }[against["verdict"]]
    interval = (
        "" if against["lower"] is None else f" [{against['lower']:+.4f}, {against['upper']:+.4f}]"
    )
    print(
        f"Strongest baseline (Jensen-Shannon): {strongest}; {outcome} "
        f"(difference {against['difference']:+.4f}{interval} over {against['questions']} "
        "questions)."
    )


def _checked(args: argparse.Namespace) -> _Study:
    """Every argument and input checked, before any computation."""
    if args.calibrate is not None and args.calibrate < 2:
        raise SurveySimError("--calibrate needs at least 2 folds")
    if not args.results.is_file():
        raise SurveySimError(f"{args.results}: no such results file")
    if args.joint is not None and not args.joint.is_file():
        raise SurveySimError(f"{args.joint}: no such joints file (write one with survey-sim joint)")
    check_outputs(
        [args.plot, args.out],
        [
            *ResultFiles.at(args.results),
            *([] if args.joint is None else ResultFiles.at(args.joint)),
            args.human,
            args.mapping,
            args.questionnaire,
        ],
    )
    result = SimulationResult.read_parquet(args.results)
    answers = load_human(args)
    human = answers.substantive() if args.substantive else answers
    model = simulated_distribution(result.population)
    simulated_survey = result.manifest.questionnaire.id if result.manifest else None
    if not set(model["question_id"]) & {q.id for q in human.questionnaire}:
        raise InputError(
            args.results,
            f"these results answer questionnaire {simulated_survey or '(unknown)'!r}, but "
            f"--human {args.human} is questionnaire {human.questionnaire.id!r}: they share no "
            "question",
        )
    questions = shared_questions(model, human.distribution(), human)
    by = [] if args.by is None else [name.strip() for name in args.by.split(",")]
    by_subgroup = result.subgroups(by) if by else None
    if by_subgroup is not None:
        shared_subgroups(by_subgroup, human, by)
    calibration = None
    if args.calibrate is not None:
        from survey_sim.analysis import Calibration

        calibration = Calibration(result.population, human)
        if args.calibrate > len(questions):
            raise SurveySimError(
                f"--calibrate {args.calibrate}: there are {len(questions)} questions to hold "
                f"out, so at most {len(questions)} folds"
            )
    joints = None
    if args.joint is not None:
        joints = JointResult.read_parquet(args.joint)
        answered = set(human.frame["question_id"])
        pairs = joints.joints.select("first", "second").unique().rows()
        if not any(first in answered and second in answered for first, second in pairs):
            raise InputError(
                args.joint,
                f"none of its {len(pairs)} pairs has both questions answered in {human.source}",
            )
    result.warn_if_one_order()
    result.warn_if_low_coverage()
    return _Study(result, human, answers, by, by_subgroup, calibration, joints)


def _title(study: _Study) -> str:
    """Which model, prompt format, population and human data a plot shows."""
    manifest = study.result.manifest
    if manifest is None:
        return f"unknown model and population vs {study.human.source}"
    settings, population = manifest.settings, manifest.population
    return (
        f"{manifest.model.model_id} ({settings.prompt_format().name} format"
        f"{', permuted orders' if settings.permute else ''}), population "
        f"{population.id!r} ({population.personas} personas) vs {study.human.source}"
    )


def _distribution_plot(study: _Study, comparison: pl.DataFrame, path: Path) -> Path:
    from survey_sim.analysis.plots import plot_distributions

    return plot_distributions(
        study.result.population, study.human, comparison, path, title=_title(study)
    )


def _by_subgroup(
    study: _Study, simulated: pl.DataFrame, args: argparse.Namespace
) -> list[Callable[[], Path]]:
    """Print per-subgroup scores and the gaps between subgroups; return their writers."""
    from survey_sim.analysis.plots import plot_gaps

    name = "_".join(study.by)
    within = compare_subgroups(simulated, study.human, study.by)
    gaps = subgroup_gaps(simulated, study.human, study.by)
    print(f"\nWithin each {', '.join(study.by)} subgroup (mean over questions):")
    print(
        within.filter(pl.col("source").is_in(["model", "noise_floor"]))
        .group_by(*study.by, "source", maintain_order=True)
        .agg(
            pl.col("representativeness", "jensen_shannon", "total_variation").mean(),
            n=pl.col("n").sum(),
        )
        .pivot(on="source", index=study.by, values=["representativeness", "total_variation"])
    )
    print(
        f"\nGaps between {', '.join(study.by)} groups (total variation between the groups' "
        "answers, mean over questions; same_direction: share of questions where the "
        "simulation moves from one group to the other the way people do):"
    )
    print(
        gaps.group_by("group_a", "group_b", maintain_order=True).agg(
            questions=pl.len(),
            people=pl.col("people").mean(),
            model=pl.col("model").mean(),
            same_direction=pl.col("same_direction").mean(),
        )
    )
    writes: list[Callable[[], Path]] = [
        lambda: plot_gaps(
            gaps, beside(args.results, name, ".png"), by=", ".join(study.by), title=_title(study)
        )
    ]
    if args.out is not None:
        writes += [
            lambda: write_parquet_atomic(within, beside(args.out, name)),
            lambda: write_parquet_atomic(gaps, beside(args.out, f"{name}_gaps")),
        ]
    return writes


def _calibrate(calibration: Calibration, args: argparse.Namespace) -> list[Callable[[], Path]]:
    """Fit and print the calibration model; return the writers of its files."""
    import arviz as az

    from survey_sim.analysis import coverage_by_question, plot_calibration
    from survey_sim.analysis.backend import sampler_messages

    sampler_messages(args.verbose)
    print(f"\nCalibration model: full fit, then {args.calibrate} held-out folds ...")
    options: SamplingOptions = {**sampling_options(args), "progress": args.verbose}
    idata = calibration.fit(**options)
    predictions = calibration.held_out(folds=args.calibrate, **options)
    summary = az.summary(idata, var_names=["alpha", "beta", "sigma"], kind="stats")
    print(summary.to_string(float_format="{:.3f}".format))
    per_question = coverage_by_question(predictions)
    free = predictions.filter(pl.col("free"))
    level = f"{free['interval'][0]:.0%}"
    print(
        f"\nHeld-out {level} intervals, per question (a question's last share is fixed by the "
        "others, so it is not counted):"
    )
    print(per_question)
    width = float(free.select((pl.col("upper") - pl.col("lower")).mean()).item())
    print(
        f"{int(per_question['all_covered'].sum())} of {per_question.height} questions have "
        f"every share inside its interval; {int(free['covered'].sum())} of {free.height} free "
        f"shares are inside; mean width {width:.2f}."
    )
    summary_frame = pl.from_pandas(summary.reset_index(names="parameter"))
    return [
        lambda: _write_netcdf(idata, beside(args.results, "calibration", ".nc")),
        lambda: write_parquet_atomic(predictions, beside(args.results, "calibration")),
        lambda: write_parquet_atomic(summary_frame, beside(args.results, "calibration_summary")),
        lambda: plot_calibration(idata, predictions, beside(args.results, "calibration", ".png")),
    ]


def _joint(
    study: _Study, joints: JointResult, args: argparse.Namespace
) -> list[Callable[[], Path]]:
    """Print the joints against people's cross-tabs; return the writers of their files."""
    from survey_sim.analysis.plots import plot_associations

    compared = compare_joints(joints, study.human)
    print(
        f"\nJoints of question pairs ({compared.asked} of both asking orders) against "
        "people's cross-tabs, mean over pairs (personas_only: each persona's marginals "
        "multiplied; model_independence / human_independence: the product of the model's / "
        "people's marginals; noise_floor: what people's true joint would score):"
    )
    print(compared.summary())
    level = f"{compared.interval:.0%}"
    print(
        f"\nModel minus each reference over the pairs, {level} intervals (pairs resampled "
        "together):"
    )
    print(compared.paired.select("versus", "metric", "difference", "lower", "upper", "verdict"))
    print(
        f"\nAssociation per pair, model against people (people's {level} interval from "
        "resampling respondents; correlation: across pairs, does the model know which pairs "
        "go together more?):"
    )
    print(compared.association_summary())
    print(
        compared.associations.select(
            "pair", "measure", "people", "people_lower", "people_upper", "model", "verdict"
        )
    )
    measure = args.association
    if measure == "auto":
        measure = "tau_b" if "tau_b" in set(compared.associations["measure"]) else "cramers_v"
    writes: list[Callable[[], Path]] = [
        lambda: plot_associations(
            compared.associations,
            beside(args.results, "joint", ".png"),
            measure=measure,
            title=_title(study),
            interval=compared.interval,
        )
    ]
    if args.out is not None:
        writes += [
            lambda: write_parquet_atomic(compared.scores, beside(args.out, "joint")),
            lambda: write_parquet_atomic(compared.associations, beside(args.out, "associations")),
        ]
    return writes


def _nonresponse(
    study: _Study, compared: set[str], args: argparse.Namespace
) -> list[Callable[[], Path]]:
    """Where a compared question has non-substantive options: print their shares, model
    against people, and return the writer of their file."""
    questionnaire = study.answers.questionnaire
    if not with_nonresponse(questionnaire.question(q) for q in compared):
        return []
    nonresponse = compare_nonresponse(study.result, study.answers)
    scored = "left out of the scores above" if args.substantive else "scored as options above"
    print(
        f"\nDon't know and refusal (options marked 'substantive: false', {scored}): the "
        "model's probability against people's share, with people's 90% interval from "
        "resampling respondents:"
    )
    print(
        nonresponse.select(
            "question_id",
            "option_text",
            "model",
            "people",
            interval=pl.format("[{}, {}]", pl.col("lower").round(3), pl.col("upper").round(3)),
            verdict="verdict",
        )
    )
    if args.out is None:
        return []
    return [lambda: write_parquet_atomic(nonresponse, beside(args.out, "nonresponse"))]


def _write_netcdf(idata: az.InferenceData, path: Path) -> Path:
    return write_atomic(path, lambda temporary: idata.to_netcdf(temporary))


def _write_all(writes: list[Callable[[], Path]]) -> list[Path]:
    """Run every writer; if one fails, remove what the others wrote, so a failed comparison
    leaves no partial set of files."""
    written: list[Path] = []
    try:
        for write in writes:
            written.append(write())
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return written
