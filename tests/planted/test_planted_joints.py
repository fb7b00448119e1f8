"""The planted process's joints: the latent trait that taxes and welfare share shows as
association beyond what the cells give, the null item has none; people sampled from the
process, compared with the process's own joint, show no association difference (the
comparison recovers the planted association within its interval)."""

from __future__ import annotations

import polars as pl
import pytest

from survey_sim import compare_joints
from survey_sim.planted import PlantedSurvey

PAIRS = [("taxes", "welfare"), ("taxes", "weather"), ("welfare", "guns")]


@pytest.fixture(scope="module")
def survey():
    return PlantedSurvey()


@pytest.fixture(scope="module")
def process(survey):
    return survey.joints(PAIRS)


def test_the_process_joint_carries_the_planted_association(process):
    sums = process.joints.group_by("persona_id", "first", "second", "asked").agg(
        pl.col("prob").sum()
    )
    assert sums["prob"].to_list() == pytest.approx([1.0] * sums.height, abs=1e-9)
    orders = process.joints.pivot(
        on="asked",
        index=["persona_id", "first", "second", "first_code", "second_code"],
        values="prob",
    )
    assert (orders["first, second"] - orders["second, first"]).abs().max() < 1e-12


def test_people_sampled_from_the_process_recover_its_association(survey, process):
    compared = compare_joints(process, survey.sample(3000, seed=11), resamples=300)
    tau = {
        row["pair"]: row
        for row in compared.associations.filter(pl.col("measure") == "tau_b").iter_rows(named=True)
    }
    trait, null, cells = tau["taxes × welfare"], tau["taxes × weather"], tau["welfare × guns"]
    assert trait["model"] > 0.3 and trait["model"] - trait["personas_only"] > 0.15
    assert abs(null["model"]) < 1e-6 and abs(null["personas_only"]) < 1e-6
    assert cells["model"] == pytest.approx(cells["personas_only"], abs=1e-6)  # cells only
    for row in tau.values():
        standard_error = (row["people_upper"] - row["people_lower"]) / 3.29
        assert abs(row["difference"]) < 4 * standard_error, row
    # A sample's plain Cramér's V is biased upward (0.04 here, where the process has 0):
    # uncorrected, the exact process read as "model lower" in every sample.
    (v,) = compared.associations.filter(
        pl.col("pair") == "taxes × weather", pl.col("measure") == "cramers_v"
    ).iter_rows(named=True)
    assert v["people_lower"] == 0.0 and v["verdict"] == "no clear difference"
