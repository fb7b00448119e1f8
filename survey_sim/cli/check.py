"""``survey-sim check``: validate a study's files against each other, without a model."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import polars as pl

from survey_sim.cli._common import add_human_arguments, counted, load_human
from survey_sim.data.responses import HumanResponses
from survey_sim.errors import SurveySimError
from survey_sim.flow import check_population, path_dependent, pipes_in
from survey_sim.population import Population
from survey_sim.questionnaire import OptionsQuestion, Questionnaire, load_questionnaire


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the command with the ``survey-sim`` parser."""
    checking = commands.add_parser(
        "check",
        help="validate a questionnaire, personas and human data against each other (no model)",
        description="Read every file given, check them against each other and say what was "
        "found: questions, personas, respondents kept and dropped (and why), attributes, "
        "persona cells. Loads no model; exits 2 with one clear message on the first problem.",
    )
    add_human_arguments(checking, required=False)
    checking.add_argument("--personas", type=Path, help="persona table (.csv or .yaml)")
    checking.set_defaults(handler=check_command)


def check_command(args: argparse.Namespace) -> int:
    """``survey-sim check``."""
    if args.human is None and args.questionnaire is None and args.personas is None:
        raise SurveySimError("name something to check: --questionnaire, --personas, --human")
    human = load_human(args) if args.human is not None else None
    questionnaire = (
        human.questionnaire
        if human is not None
        else load_questionnaire(args.questionnaire)
        if args.questionnaire is not None
        else None
    )
    personas = Population.from_file(args.personas) if args.personas is not None else None
    if questionnaire is not None:
        print(_questionnaire_summary(questionnaire, args.questionnaire))
        flow = _flow_summary(questionnaire)
        if flow:
            print(flow)
    if personas is not None:
        print(_personas_summary(personas, args.personas))
    if questionnaire is not None and personas is not None:
        check_population(questionnaire, personas)
    if human is not None:
        print(_human_summary(human, args.mapping))
    if human is not None and personas is not None:
        print(_personas_against_people(personas, human))
    print("No problem found (no model was loaded).")
    return 0


def _questionnaire_summary(questionnaire: Questionnaire, path: Path | None) -> str:
    kinds = Counter(question.kind for question in questionnaire)
    options = Counter(
        len(question.options) for question in questionnaire if isinstance(question, OptionsQuestion)
    )
    by_count = [f"{k} ({counted(n, 'question')})" for k, n in sorted(options.items())]
    return (
        f"Questionnaire {questionnaire.id!r}{f' ({path})' if path else ''}: "
        f"{counted(len(questionnaire), 'question')} "
        f"({', '.join(f'{n} {kind}' for kind, n in kinds.items())}); options per question: "
        f"{', '.join(by_count) or 'none'}."
        + "".join(
            f" Grid {grid.id!r}: {counted(len(grid.rows), 'row')} ({', '.join(grid.rows)})."
            for grid in questionnaire.grids
        )
    )


def _flow_summary(questionnaire: Questionnaire) -> str | None:
    """The flow in one line (``None``: every question asked of everyone, in listed order,
    on its own)."""
    conditional = [q for q in questionnaire.listed_order if questionnaire.condition(q)]
    piped = [q.id for q in questionnaire if pipes_in(q)]
    if not (questionnaire.blocks or conditional or piped or questionnaire.memory != "none"):
        return None
    blocks = ", ".join(
        f"{b.id}{' (random order)' if b.order == 'random' else ''}"
        for b in questionnaire.flow_blocks
    )
    memory = questionnaire.memory
    dependent = path_dependent(questionnaire)
    return (
        f"Flow: blocks {blocks}, in {questionnaire.block_order} order; asked on a condition: "
        f"{', '.join(conditional) or 'none'}; piped wording: {', '.join(piped) or 'none'}; "
        f"memory: {memory if isinstance(memory, str) else f'last {memory.last}'}. "
        f"Population runs read {len(questionnaire) - len(dependent)} question(s) exactly"
        + (
            f"; {', '.join(dependent)} depend(s) on earlier answers (survey-sim respondents)."
            if dependent
            else "."
        )
    )


def _personas_summary(population: Population, path: Path) -> str:
    frame = population.frame
    attributes = [c for c in frame.columns if c not in ("persona_id", "weight", "description")]
    weights = [persona.weight for persona in population]
    return (
        f"Personas {path}: {counted(len(population), 'persona')}, attributes "
        f"{', '.join(attributes) or 'none'}; weights sum to {sum(weights):.3f} "
        f"(each {min(weights):.3g} to {max(weights):.3g}).\n"
        f"  First description: {next(iter(population)).description}"
    )


def _human_summary(human: HumanResponses, mapping: Path | None) -> str:
    people = human.frame.unique("respondent_id")
    kept = people.height
    items = human.frame["question_id"].n_unique()
    lines = [f"Human data {human.source}" + (f" through {mapping}:" if mapping else ":")]
    if human.rows is not None:
        lines.append(
            f"  {human.rows:,} respondents in the data; {kept:,} answered at least one of the "
            f"{items} mapped questions, {human.rows - kept:,} answered none (left out: blank "
            "or a missing code in every mapped column)."
        )
    answered = human.frame.group_by("question_id", maintain_order=True).agg(answers=pl.len())
    lines.append(
        "  Answers per question (of the kept respondents; the rest are blank or missing "
        "codes): " + ", ".join(f"{q} {n:,}" for q, n in answered.iter_rows()) + "."
    )
    if human.removed is not None and not human.removed.is_empty():
        removed = human.removed.group_by("question_id", maintain_order=True).agg(
            pl.format("{} ({})", "code", "answers").str.join(", ")
        )
        lines.append(
            "  Answers removed by the codes listed as missing (answers): "
            + "; ".join(f"{q}: {codes}" for q, codes in removed.iter_rows())
            + "."
        )
    lines.append(_weights_line(human, people))
    for name in human.attributes:
        values = sorted(people[name].drop_nulls().unique().to_list())
        lines.append(
            f"  Attribute {name}: {len(values)} values ({', '.join(values[:8])}"
            f"{', ...' if len(values) > 8 else ''}); "
            f"{people[name].null_count():,} kept respondents without one."
        )
    if human.recipe is not None:
        cells = human.cells()
        lines.append(
            f"  Persona cells (the mapping's population: by {', '.join(human.recipe.by)}, at "
            f"least {human.recipe.min_respondents} respondents): {cells.height} cells cover "
            f"{cells['respondents'].sum():,} of {kept:,} respondents."
        )
    unmapped = [q.id for q in human.questionnaire if q.id not in set(answered["question_id"])]
    if unmapped:
        lines.append(
            f"  Questions with no human answers (simulated, but not compared): "
            f"{', '.join(unmapped)}."
        )
    return "\n".join(lines)


def _weights_line(human: HumanResponses, people: pl.DataFrame) -> str:
    """The weight column and the Kish effective sample size, or that there are none."""
    if human.weight_column is None:
        return "  No weights: every respondent counts once (the mapping names no 'weight' column)."
    return (
        f"  Weights: column {human.weight_column!r} (Kish effective n "
        f"{human.effective_respondents:,.0f} of "
        f"{people.height:,} kept respondents)."
    )


def _personas_against_people(population: Population, human: HumanResponses) -> str:
    """Which persona attributes the human data share (compare --by), and values one side
    has that the other lacks (a spelling difference makes a subgroup compare to nothing)."""
    frame = population.frame
    shared = [name for name in human.attributes if name in frame.columns]
    if not shared:
        return (
            "Personas and human data share no attribute: compare works on the whole "
            "population only (compare --by needs an attribute both have)."
        )
    lines = [f"Personas and human data share {', '.join(shared)} (usable with compare --by)."]
    for name in shared:
        persona_values = set(frame[name].cast(pl.String).drop_nulls())
        human_values = set(human.frame[name].drop_nulls())
        if persona_values - human_values:
            lines.append(
                f"  {name}: personas have {', '.join(sorted(persona_values - human_values))}, "
                f"which no respondent has (respondents: {', '.join(sorted(human_values))})."
            )
    return "\n".join(lines)
