"""survey-sim: probabilistic survey simulation with language-model personas.

Typical use::

    from survey_sim import Population, TransformersEngine, load_questionnaire, simulate

    questionnaire = load_questionnaire("questionnaires/gss_spending_2018.yaml")
    population = Population.from_file("personas/us_adults_demo.yaml")
    engine = TransformersEngine.from_pretrained()          # default: SmolLM2-135M-Instruct
    result = simulate(questionnaire, population, engine, format="chat")
    result.responses      # polars: persona x question x option, exact probabilities
    result.population     # polars: weighted population distribution

The names here are what a notebook uses. Building blocks for extending survey-sim (engine
requests and results, per-kind asking, answer schemas) live in their subpackages:
:mod:`survey_sim.engines`, :mod:`survey_sim.asking`, :mod:`survey_sim.runs`,
:mod:`survey_sim.data`, :mod:`survey_sim.evaluate`, :mod:`survey_sim.analysis`; tuning
the respondent model on survey data (LoRA) in :mod:`survey_sim.tune`.
"""

from typing import TYPE_CHECKING

from survey_sim._lazy import lazy_getattr
from survey_sim._version import VERSION
from survey_sim.analysis import (
    Alignment,
    Calibration,
    DiagnosticWarning,
    IndividualCalibration,
    Subgroups,
    coverage_by_question,
    plot_calibration,
    plot_distributions,
    plot_gaps,
    plot_learning_curve,
)
from survey_sim.asking import ChatFormat, PlainFormat, PromptFormat, SpectrumFormat, XmlFormat
from survey_sim.data import (
    HUMAN_DATASETS,
    DataMapping,
    HumanResponses,
    bundled_file,
    cces_2016,
    ces_2011,
    ess_2020_norway,
    gss_spending_2018,
)
from survey_sim.data.splits import IndividualSplit
from survey_sim.engines import Engine, EngineStats
from survey_sim.errors import (
    CoverageWarning,
    FlowWarning,
    InputError,
    MethodError,
    ModelNotFoundError,
    OptionOrderWarning,
    ScoringError,
    ServerError,
    SurveySimError,
)
from survey_sim.evaluate.individuals import IndividualEvaluation, evaluate_individuals
from survey_sim.evaluate.joints import JointComparison, compare_joints
from survey_sim.evaluate.metrics import (
    compare,
    compare_subgroups,
    paired_differences,
    strongest_baseline,
    subgroup_gaps,
    summarise,
)
from survey_sim.evaluate.nonresponse import compare_nonresponse
from survey_sim.population import Persona, Population
from survey_sim.questionnaire import (
    Bin,
    Block,
    ChoiceQuestion,
    FreeTextQuestion,
    LastAnswers,
    MultiSelectQuestion,
    NumericQuestion,
    Option,
    Question,
    Questionnaire,
    RankQuestion,
    load_questionnaire,
)
from survey_sim.runs import (
    PromptPreview,
    ResultsCache,
    SimulationResult,
    SimulationSettings,
    position_bias,
    preview,
    rank_summary,
    simulate,
)
from survey_sim.runs.experiments import ExperimentResult, after_related, early_late, experiment
from survey_sim.runs.individuals import IndividualResult, simulate_individuals
from survey_sim.runs.joints import ChainResult, JointResult, chain, joint
from survey_sim.runs.respondents import RespondentsResult, simulate_respondents

if TYPE_CHECKING:
    from survey_sim.engines.registry import DEFAULT_MODEL
    from survey_sim.engines.sglang import SGLangEngine, SGLangSettings
    from survey_sim.engines.transformers import EngineSettings, TransformersEngine

# torch, transformers and httpx load on first use of these names, not on `import survey_sim`.
__getattr__ = lazy_getattr(
    __name__,
    {
        "DEFAULT_MODEL": "survey_sim.engines.registry",
        "EngineSettings": "survey_sim.engines.transformers",
        "TransformersEngine": "survey_sim.engines.transformers",
        "SGLangEngine": "survey_sim.engines.sglang",
        "SGLangSettings": "survey_sim.engines.sglang",
    },
)

__version__ = VERSION

__all__ = [
    "DEFAULT_MODEL",
    "HUMAN_DATASETS",
    "Alignment",
    "Bin",
    "Block",
    "Calibration",
    "ChainResult",
    "ChatFormat",
    "ChoiceQuestion",
    "CoverageWarning",
    "DataMapping",
    "DiagnosticWarning",
    "Engine",
    "EngineSettings",
    "EngineStats",
    "ExperimentResult",
    "FlowWarning",
    "FreeTextQuestion",
    "HumanResponses",
    "IndividualCalibration",
    "IndividualEvaluation",
    "IndividualResult",
    "IndividualSplit",
    "InputError",
    "JointComparison",
    "JointResult",
    "LastAnswers",
    "MethodError",
    "ModelNotFoundError",
    "MultiSelectQuestion",
    "NumericQuestion",
    "Option",
    "OptionOrderWarning",
    "Persona",
    "PlainFormat",
    "Population",
    "PromptFormat",
    "PromptPreview",
    "Question",
    "Questionnaire",
    "RankQuestion",
    "RespondentsResult",
    "ResultsCache",
    "SGLangEngine",
    "SGLangSettings",
    "ScoringError",
    "ServerError",
    "SimulationResult",
    "SimulationSettings",
    "SpectrumFormat",
    "Subgroups",
    "SurveySimError",
    "TransformersEngine",
    "XmlFormat",
    "after_related",
    "bundled_file",
    "cces_2016",
    "ces_2011",
    "chain",
    "compare",
    "compare_joints",
    "compare_nonresponse",
    "compare_subgroups",
    "coverage_by_question",
    "early_late",
    "ess_2020_norway",
    "evaluate_individuals",
    "experiment",
    "gss_spending_2018",
    "joint",
    "load_questionnaire",
    "paired_differences",
    "plot_calibration",
    "plot_distributions",
    "plot_gaps",
    "plot_learning_curve",
    "position_bias",
    "preview",
    "rank_summary",
    "simulate",
    "simulate_individuals",
    "simulate_respondents",
    "strongest_baseline",
    "subgroup_gaps",
    "summarise",
]
