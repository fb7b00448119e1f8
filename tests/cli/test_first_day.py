"""A researcher's first day with their own survey: every command on real files, every
mistake explained before any work, and nothing written when a command fails."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
from test_cli import run_cli  # the sibling module: the console script as a user runs it


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, attitudes_writer):
    """The attitudes survey as files, its persona cells, and a tiny-model run on them."""
    directory = tmp_path_factory.mktemp("first-day")
    data, mapping, questionnaire = attitudes_writer(directory, respondents=300)
    human = ["--human", str(data), "--mapping", str(mapping), "--questionnaire", str(questionnaire)]
    cells = directory / "cells.csv"
    built = run_cli("population", *human, "--out", str(cells))
    assert built.returncode == 0, built.stderr
    results = directory / "sim.parquet"
    ran = run_cli(
        "run", str(questionnaire), "--personas", str(cells), "--model", str(tiny_model_dir),
        "--out", str(results),
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    return directory, human, results, ran.stdout


def test_run_shows_the_population_and_a_summary(study):
    _, _, _, stdout = study
    assert "Population distribution" in stdout and "Per-persona" not in stdout
    assert "2 personas x 5 questions" in stdout


def test_check_says_what_it_found(study):
    directory, human, _, _ = study
    checked = run_cli("check", *human, "--personas", str(directory / "cells.csv"))
    assert checked.returncode == 0, checked.stderr
    people = pl.read_csv(directory / "attitudes.csv")
    unanswered = people.filter(pl.all_horizontal(pl.exclude("rid", "party").is_null())).height
    assert (
        f"300 respondents in the data; {300 - unanswered} answered at least one of the 5 mapped "
        f"questions, {unanswered} answered none" in checked.stdout
    )
    assert "Personas and human data share party (usable with compare --by)" in checked.stdout
    assert "No weights: every respondent counts once" in checked.stdout
    assert "no model was loaded" in checked.stdout


def test_check_names_the_weights_and_what_each_missing_code_removes(study, tmp_path):
    directory, human, _, _ = study
    people = pl.read_csv(directory / "attitudes.csv").with_columns(
        w=pl.when(pl.col("rid") % 3 == 0).then(3.0).otherwise(1.0)
    )
    people.write_csv(tmp_path / "weighted.csv")
    mapping = (directory / "attitudes.mapping.yaml").read_text() + "weight: w\nmissing: [3]\n"
    (tmp_path / "weighted.mapping.yaml").write_text(mapping)
    checked = run_cli(
        "check", "--human", str(tmp_path / "weighted.csv"),
        "--mapping", str(tmp_path / "weighted.mapping.yaml"), *human[4:],
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    items = ["taxes", "parks", "roads", "schools", "police"]
    kept = people.filter(pl.any_horizontal([pl.col(q).is_in([1.0, 2.0]) for q in items]))["w"]
    effective = kept.sum() ** 2 / (kept**2).sum()
    assert (
        f"Weights: column 'w' (Kish effective n {effective:,.0f} of {kept.len():,} kept "
        "respondents)" in checked.stdout
    )
    removed = "; ".join(f"{q}: 3 ({(people[q] == 3).sum()})" for q in items)
    assert f"Answers removed by the codes listed as missing (answers): {removed}." in (
        checked.stdout
    )


def test_compare_on_chosen_questions(study, tmp_path):
    _, human, results, _ = study
    metrics = tmp_path / "metrics.parquet"
    chosen = run_cli(
        "compare", str(results), *human, "--questions", "taxes,parks", "--out", str(metrics)
    )
    assert chosen.returncode == 0, chosen.stderr
    assert set(pl.read_parquet(metrics)["question_id"]) == {"taxes", "parks"}
    wrong = run_cli("compare", str(results), *human, "--questions", "taxes,park")
    assert wrong.returncode == 2
    assert "no answers to 'park' here (questions with answers: parks, police" in wrong.stderr


@pytest.mark.slow
def test_compare_by_party_with_calibration_files(study):
    directory, human, results, _ = study
    metrics = directory / "metrics.parquet"
    compared = run_cli(
        "compare", str(results), *human, "--by", "party", "--calibrate", "2", "--out", str(metrics)
    )
    assert compared.returncode == 0, compared.stderr
    assert "asked in one option order" in compared.stderr  # the position-bias warning
    assert "Initializing NUTS" not in compared.stdout + compared.stderr  # PyMC kept quiet
    assert "Gaps between party groups" in compared.stdout
    gaps = pl.read_parquet(directory / "metrics.party_gaps.parquet")
    assert gaps.select("group_a", "group_b").rows() == [("Democrat", "Republican")] * 5
    people = gaps["people"].to_numpy()
    assert (people > 0.2).all()  # the data's parties differ by construction
    within = pl.read_parquet(directory / "metrics.party.parquet")
    assert set(within["party"]) == {"Democrat", "Republican"}
    assert re.search(r"\d of 5 questions have every share inside its interval", compared.stdout)
    predictions = pl.read_parquet(directory / "sim.calibration.parquet")
    assert predictions.height == 5 * 3 and predictions.filter(pl.col("free")).height == 5 * 2
    assert set(predictions["interval"]) == {0.9}
    for name in ("sim.png", "sim.party.png", "sim.calibration.png", "sim.calibration.nc"):
        assert (directory / name).stat().st_size > 1000, name
    assert "parameter" in pl.read_parquet(directory / "sim.calibration_summary.parquet").columns


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--calibrate", "1"], "--calibrate needs at least 2 folds"),
        (["--calibrate", "9"], "there are 5 questions to hold out, so at most 5 folds"),
        (["--by", "income"], "the personas have no attribute income (their attributes: party)"),
        (["--plot", "plot.jpg"], "plot.jpg: a plot is written as PNG"),
        (["--out", "metrics.csv"], "name a file ending in .parquet"),
        (["--out", "sim.parquet"], "sim.parquet: an input of this command"),
    ],
)
def test_compare_refuses_before_any_work_and_writes_nothing(study, arguments, message):
    directory, human, results, _ = study
    before = set(directory.iterdir())
    refused = run_cli("compare", str(results), *human, *arguments, cwd=directory)
    assert refused.returncode == 2 and message in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    assert set(directory.iterdir()) == before


def test_comparing_with_another_survey_says_so(study):
    directory, _, results, _ = study
    before = set(directory.iterdir())
    refused = run_cli("compare", str(results), "--human", "ces_2011")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert (
        "these results answer questionnaire 'attitudes', but --human ces_2011 is questionnaire "
        "'ces_2011': they share no question" in refused.stderr
    )
    assert set(directory.iterdir()) == before


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["population", "--human", "ces_2010", "--out", "cells.csv"],
            "no bundled survey of that name (did you mean ces_2011?); bundled: cces_2016, "
            "ces_2011, ess_2020_norway, gss_spending_2018. A data file (.csv, .parquet, .sav, "
            ".dta) needs --mapping and --questionnaire",
        ),
        (
            ["run", "q.yaml", "--personas", "p.csv", "--out", "results.csv"],
            "results are written as Parquet; name a file ending in .parquet",
        ),
        (["population", "--human", "ces_2011", "--out", "cells.parquet"], "written as CSV"),
    ],
)
def test_argument_mistakes_are_explained(tmp_path, arguments, message):
    refused = run_cli(*arguments, cwd=tmp_path)
    assert refused.returncode == 2 and message in refused.stderr, refused.stderr
    assert list(tmp_path.iterdir()) == []


def test_outputs_that_cannot_be_written_are_refused_before_any_work(tmp_path):
    (tmp_path / "folder.parquet").mkdir()
    (tmp_path / "file.txt").write_text("not a folder")
    for out, message in [
        ("folder.parquet", "folder.parquet: a folder; name a file to write"),
        ("file.txt/r.parquet", "cannot write there: file.txt is a file, not a folder"),
    ]:
        refused = run_cli("run", "q.yaml", "--personas", "p.csv", "--out", out, cwd=tmp_path)
        assert refused.returncode == 2 and message in refused.stderr, refused.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt", "folder.parquet"]
