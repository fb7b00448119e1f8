"""Plots a reader can read: on 2-, 3-, 5-, 7- and 11-option items no option label runs
into another or into the legend, and the learning curve says how many respondents."""

from __future__ import annotations

import itertools
import json

import numpy as np
import polars as pl
import pytest

from survey_sim import HumanResponses, compare, load_questionnaire, plot_learning_curve
from survey_sim.analysis.plots import distributions_figure
from survey_sim.data.mapping import DataMapping

SIZES = (2, 3, 5, 7, 11)
LONG_ENDS = {0: "Not at all satisfied with it", -1: "Completely satisfied with it"}


@pytest.fixture(scope="module")
def scales(tmp_path_factory) -> HumanResponses:
    """One item per scale length, end labels long as real scales' are, random answers."""
    folder = tmp_path_factory.mktemp("scales")
    questions = []
    for size in SIZES:
        texts = [str(i) for i in range(size)]
        texts[0], texts[-1] = f"0 {LONG_ENDS[0]}", f"{size - 1} {LONG_ENDS[-1]}"
        options = [{"code": str(i), "text": text} for i, text in enumerate(texts)]
        questions.append(
            {"id": f"q{size}", "kind": "ordinal", "text": f"A {size}-point item?"}
            | {"options": options}
        )
    (folder / "scales.yaml").write_text(json.dumps({"id": "scales", "questions": questions}))
    rng = np.random.default_rng(0)
    frame = pl.DataFrame(
        {"rid": list(range(200)), **{f"q{n}": rng.integers(0, n, 200).tolist() for n in SIZES}}
    )
    mapping = DataMapping.model_validate(
        {"respondent": "rid", "questions": {f"q{n}": f"q{n}" for n in SIZES}}
    )
    return HumanResponses.from_frame(frame, mapping, load_questionnaire(folder / "scales.yaml"))


def _overlapping(boxes: list) -> list[tuple[int, int]]:
    return [
        (i, j) for (i, a), (j, b) in itertools.combinations(enumerate(boxes), 2) if a.overlaps(b)
    ]


def test_option_labels_run_into_nothing(scales):
    simulated = scales.distribution().select("question_id", "option_code", "prob")
    figure = distributions_figure(simulated, scales, compare(simulated, scales), title="scales")
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    legend = figure.legends[0].get_window_extent(renderer)
    panels = [axis for axis in figure.axes if axis.get_visible()]
    assert len(panels) == len(SIZES)
    for axis in panels:
        labels = [label for label in axis.get_xticklabels() if label.get_text()]
        boxes = [label.get_window_extent(renderer) for label in labels]
        assert len(boxes) == len(axis.get_xticks())
        assert not _overlapping(boxes), axis.get_title()
        assert not any(box.overlaps(legend) for box in boxes), axis.get_title()
    titles = [axis.title.get_window_extent(renderer) for axis in panels]
    assert not _overlapping(titles)


def test_the_learning_curve_names_model_data_and_respondents(tmp_path):
    report = pl.DataFrame(
        {
            "method": ["model", "model", "uniform", "uniform"],
            "shots": [0, 2, 0, 2],
            "metric": ["log_loss"] * 4,
            "estimate": [1.0, 0.9, 1.1, 1.1],
            "lower": [0.9, 0.8, 1.1, 1.1],
            "upper": [1.1, 1.0, 1.1, 1.1],
            "rows": [80] * 4,
            "respondents": [40] * 4,
        }
    )
    written = plot_learning_curve(report, tmp_path / "curve.png", title="M (chat) on data.csv")
    assert written.stat().st_size > 1000
