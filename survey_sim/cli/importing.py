"""``survey-sim import``: a questionnaire and mapping from an SPSS or Stata file."""

from __future__ import annotations

import argparse
from pathlib import Path

from survey_sim.cli._common import check_outputs
from survey_sim.data.importers import import_file
from survey_sim.errors import SurveySimError
from survey_sim.questionnaire import load_questionnaire


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the command with the ``survey-sim`` parser."""
    parser = commands.add_parser(
        "import",
        help="write a questionnaire (and mapping) from SPSS, Stata, XLSForm, SurveyJS or Qualtrics",
        description="From an SPSS (.sav) or Stata (.dta) data file: read its variable labels, "
        "value labels, declared missing values and measurement levels, and write a "
        "questionnaire (--out) and a mapping from its columns (--mapping), so that its "
        "answers can be simulated and compared; variables with value labels become "
        "questions, demographics attributes, and a weight and an id column are found by "
        "name. From an XLSForm (.xlsx, ODK / KoboToolbox / SurveyCTO): write the "
        "questionnaire, with groups as blocks and relevant as ask_if where it translates. "
        "From a SurveyJS survey (.json) or a Qualtrics export (.qsf): the same, with "
        "pages or blocks as blocks and visibleIf or display logic as ask_if. "
        "Everything left out, renamed or guessed is printed.",
    )
    parser.add_argument(
        "file",
        type=Path,
        help="SPSS (.sav), Stata (.dta), XLSForm (.xlsx), SurveyJS (.json) or Qualtrics (.qsf)",
    )
    parser.add_argument("--out", type=Path, required=True, help="questionnaire YAML to write")
    parser.add_argument(
        "--mapping",
        type=Path,
        default=None,
        help="mapping YAML to write, from a data file (default: OUT with .mapping.yaml)",
    )
    parser.add_argument("--id", default=None, help="the questionnaire's id (default: FILE's name)")
    parser.set_defaults(handler=import_command)


def import_command(args: argparse.Namespace) -> int:
    """``survey-sim import``."""
    if args.out.suffix.lower() not in (".yaml", ".yml"):
        raise SurveySimError(f"--out {args.out}: name a .yaml file")
    mapping = args.mapping or args.out.with_name(f"{args.out.stem}.mapping.yaml")
    check_outputs([args.out, mapping], [args.file])
    imported = import_file(args.file, args.id)
    written = imported.write(args.out, mapping)
    questionnaire = load_questionnaire(args.out)
    print(
        f"{len(questionnaire)} questions from {args.file.name}"
        + (f"; {len(imported.notes)} notes:" if imported.notes else ".")
    )
    for note in imported.notes:
        print(f"  {note}")
    check = f"--questionnaire {args.out}"
    if imported.mapping:
        check = f"--human {args.file} --mapping {mapping} {check}"
    print(f"Wrote {', '.join(str(path) for path in written)}. Next: survey-sim check {check}")
    return 0
