"""``survey-sim preview``: the exact prompt a persona reads for a question, and what is
scored after it."""

from __future__ import annotations

import argparse
from pathlib import Path

from survey_sim.cli._common import (
    add_model_arguments,
    add_order_arguments,
    engine_loader,
    simulation_settings,
)
from survey_sim.errors import InputError
from survey_sim.population import Population
from survey_sim.questionnaire import load_questionnaire


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the command with the ``survey-sim`` parser."""
    previewing = commands.add_parser(
        "preview",
        help="print the exact prompt the model reads for a persona and a question",
        description="Print, for one persona and the chosen questions, the exact text the "
        "model reads before its answer, every continuation scored after it with its tokens, "
        "whether the end-of-answer marker is scored, and the token counts: the requests "
        "`run` would send with the same options. Loads the model's tokenizer and chat "
        "template; computes nothing.",
    )
    previewing.add_argument("questionnaire", type=Path, help="questionnaire YAML file")
    previewing.add_argument(
        "--personas", type=Path, required=True, help="persona table (.csv or .yaml)"
    )
    previewing.add_argument(
        "--persona", default=None, help="the persona's id (default: the table's first)"
    )
    previewing.add_argument(
        "--question",
        default=None,
        help="question ids, comma-separated, or 'all' (default: the first question)",
    )
    add_model_arguments(previewing, running=False)
    add_order_arguments(previewing)
    previewing.set_defaults(handler=preview_command)


def preview_command(args: argparse.Namespace) -> int:
    from survey_sim.runs.preview import preview

    questionnaire = load_questionnaire(args.questionnaire)
    population = Population.from_file(args.personas)
    personas = [p for p in population if args.persona is None or p.id == args.persona]
    if not personas:
        known = ", ".join(p.id for p in population)
        raise InputError(args.personas, f"no persona {args.persona!r} (personas: {known})")
    if args.question == "all":
        questions = None
    elif args.question is None:
        questions = [questionnaire.questions[0].id]
    else:
        questions = [name.strip() for name in args.question.split(",")]
    settings = simulation_settings(args)
    engine = engine_loader(args)()
    for shown in preview(questionnaire, personas[:1], engine, settings, questions=questions):
        print(shown.render(), end="\n\n")
    return 0
