"""survey-sim preview shows exactly what a run sends: the prompt, the scored continuations
and their tokens, the end-marker rule, in every format."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from survey_sim import Population, SimulationSettings, load_questionnaire
from survey_sim.data.bundled import bundled_file
from survey_sim.runs.plan import Plan
from survey_sim.runs.preview import preview

SCRIPT = str(Path(sys.executable).with_name("survey-sim"))
SCALE = ", ".join(f"{{code: {i}, text: '{i}'}}" for i in range(11))
ELEVEN = f"""\
id: scale
questions:
  - id: happy
    kind: ordinal
    label_style: number
    text: Taking all things together, how happy would you say you are?
    options: [{SCALE}]
"""


@pytest.mark.parametrize("format", ["chat", "spectrum", "xml", "plain"])
def test_the_preview_is_what_the_run_sends(gss, demo_population, tiny_engine, format):
    settings = SimulationSettings.of(format=format, permute=True)
    persona = next(iter(demo_population))
    shown = preview(gss, [persona], tiny_engine, settings, questions=["natfare"])
    plan = Plan.build(gss.select(["natfare"]), Population([persona]), settings, tiny_engine)
    sent = plan.score_requests
    assert [(p.prompt, tuple(c.text for c in p.continuations)) for p in shown] == [
        (request.prefix, request.continuations) for request in sent
    ]
    assert [p.order for p in shown] == ["1|0|-1", "-1|0|1"]
    for item, request in zip(shown, sent, strict=True):
        tokenized = tiny_engine.text.tokenize_request(request)
        assert item.prompt_tokens == len(tiny_engine.text.tokenize(item.prompt))
        assert item.longest_tokens == tiny_engine.sequence_tokens(request)
        assert [len(c.tokens or ()) for c in item.continuations] == [
            len(tokens) for tokens in tokenized.continuations
        ]
        assert "End-of-answer marker: not scored" in item.render()


def test_the_end_marker_is_shown_where_answers_begin_others(tmp_path, tiny_engine, demo_population):
    (tmp_path / "scale.yaml").write_text(ELEVEN)
    questionnaire = load_questionnaire(tmp_path / "scale.yaml")
    (item,) = preview(questionnaire, list(demo_population)[:1], tiny_engine)
    assert {c.end_marker for c in item.continuations} == {"<|im_end|>"}
    assert [c.text for c in item.continuations][:2] == ["1<|im_end|>", "2<|im_end|>"]
    text = item.render()
    assert "End-of-answer marker: scored ('<|im_end|>' after each answer)" in text
    assert "Answer with the number of one option only." in text


def test_the_command_prints_the_prompt(tiny_model_dir):
    done = subprocess.run(
        [
            *(SCRIPT, "preview", str(bundled_file("questionnaires", "gss_spending_2018.yaml"))),
            *("--personas", str(bundled_file("personas", "us_adults_demo.yaml"))),
            *("--question", "natfare,natarms", "--model", str(tiny_model_dir)),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("=== nat") == 2
    assert "Are we spending too much, too little, or about the right amount on welfare?" in (
        done.stdout
    )
    assert "Scored continuations" in done.stdout
    wrong = subprocess.run(
        [
            *(SCRIPT, "preview", str(bundled_file("questionnaires", "gss_spending_2018.yaml"))),
            *("--personas", str(bundled_file("personas", "us_adults_demo.yaml"))),
            *("--question", "natfair", "--model", str(tiny_model_dir)),
        ],
        capture_output=True,
        text=True,
    )
    assert wrong.returncode == 2 and "no question 'natfair'" in wrong.stderr
