"""Real human survey data: mappings from data files to questionnaires, tidy responses,
readers for CSV / Parquet / SPSS / Stata, and the bundled datasets."""

from survey_sim.data.bundled import (
    HUMAN_DATASETS,
    bundled_file,
    cces_2016,
    ces_2011,
    ess_2020_norway,
    gss_spending_2018,
)
from survey_sim.data.export import Exported, export_microdata
from survey_sim.data.mapping import DataMapping
from survey_sim.data.responses import HumanResponses

__all__ = [
    "HUMAN_DATASETS",
    "DataMapping",
    "Exported",
    "HumanResponses",
    "bundled_file",
    "cces_2016",
    "ces_2011",
    "ess_2020_norway",
    "export_microdata",
    "gss_spending_2018",
]
