"""``survey-sim export``: a simulated sample for SPSS, Stata, CSV or Parquet users."""

from __future__ import annotations

import argparse
from pathlib import Path

from survey_sim.cli._common import check_outputs
from survey_sim.data.export import EXPORT_FORMATS
from survey_sim.errors import SurveySimError
from survey_sim.questionnaire import load_questionnaire
from survey_sim.runs.respondents import RespondentsResult
from survey_sim.runs.results import ResultFiles


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the command with the ``survey-sim`` parser."""
    parser = commands.add_parser(
        "export",
        help="write simulated respondents for SPSS, Stata, CSV or Parquet",
        description="Write the sample in RESULTS (written by survey-sim respondents) as one "
        "row per respondent, with the personas' attributes and a column per question: "
        "SPSS (.sav) and Stata (.dta) files carry the questionnaire's variable labels and "
        "value labels (and, in .sav, non-substantive codes declared missing); CSV and "
        "Parquet get a codebook (OUT.codebook.csv). Codes are written as they are: a "
        "question with text codes stays text, without value labels, and is listed.",
    )
    parser.add_argument("results", type=Path, help="respondents results (.parquet)")
    parser.add_argument(
        "--questionnaire",
        type=Path,
        required=True,
        help="the questionnaire YAML the sample answered (checked against the results)",
    )
    parser.add_argument("--out", type=Path, required=True, help="file to write")
    parser.add_argument(
        "--to",
        choices=EXPORT_FORMATS,
        default=None,
        help="format (default: from --out's suffix)",
    )
    parser.set_defaults(handler=export_command)


def export_command(args: argparse.Namespace) -> int:
    """``survey-sim export``."""
    to = args.to or args.out.suffix.lstrip(".").lower()
    if to not in EXPORT_FORMATS:
        raise SurveySimError(
            f"--out {args.out}: name a file ending in {', '.join('.' + f for f in EXPORT_FORMATS)}"
            " or give --to"
        )
    if not args.results.is_file():
        raise SurveySimError(f"{args.results}: no such results file")
    check_outputs([args.out], [*ResultFiles.at(args.results), args.questionnaire])
    questionnaire = load_questionnaire(args.questionnaire)
    sample = RespondentsResult.read_parquet(args.results)
    exported = sample.export(args.out, questionnaire, to)
    if exported.text_coded:
        print(
            "Kept as text, without value labels (their codes are not whole numbers, and "
            f"{to} labels numbers only): {', '.join(exported.text_coded)}"
        )
    if exported.cut_labels:
        print(
            f"Question texts cut to the {to} variable-label limit: {', '.join(exported.cut_labels)}"
        )
    print(f"Wrote {', '.join(str(path) for path in exported.paths)}.")
    return 0
