"""survey-sim: probabilistic survey simulation with language-model personas.

Typical use::

    from survey_sim import Population, TransformersEngine, load_questionnaire, simulate

    questionnaire = load_questionnaire("questionnaires/gss_spending_2018.yaml")
    population = Population.from_file("personas/us_adults_demo.yaml")
    engine = TransformersEngine.from_pretrained()          # default: SmolLM2-135M-Instruct
    result = simulate(questionnaire, population, engine, format="chat")
    result.responses      # polars: persona x question x option, exact probabilities
    result.population     # polars: weighted population distribution
"""

from typing import TYPE_CHECKING

from survey_sim._lazy import lazy_getattr
from survey_sim.analysis.models import (
    DiagnosticWarning,
    fit_alignment,
    fit_calibration,
    fit_subgroups,
    held_out_coverage,
    predict_calibrated,
    subgroup_distributions,
)
from survey_sim.asking.formats import (
    ChatFormat,
    PlainFormat,
    PromptFormat,
    SpectrumFormat,
    get_format,
)
from survey_sim.asking.kinds import Asking, ask
from survey_sim.asking.schemas import answer_schema
from survey_sim.data.bundled import bundled_file
from survey_sim.data.mapping import DataMapping
from survey_sim.data.responses import HumanResponses
from survey_sim.engines.base import (
    ChatMessage,
    Engine,
    SampleRequest,
    SampleResult,
    ScoreRequest,
    ScoreResult,
)
from survey_sim.errors import (
    InputError,
    MethodError,
    ModelNotFoundError,
    ScoringError,
    SurveySimError,
)
from survey_sim.evaluate.metrics import compare
from survey_sim.population import Persona, Population
from survey_sim.questionnaire import (
    Bin,
    ChoiceQuestion,
    FreeTextQuestion,
    MultiSelectQuestion,
    NumericQuestion,
    Option,
    Question,
    Questionnaire,
    load_questionnaire,
)
from survey_sim.runs import SimulationResult, position_bias, simulate

if TYPE_CHECKING:
    from survey_sim.engines.registry import DEFAULT_MODEL
    from survey_sim.engines.transformers import EngineSettings, TransformersEngine

# torch and transformers load on first use of these names, not on `import survey_sim`.
__getattr__ = lazy_getattr(
    __name__,
    {
        "DEFAULT_MODEL": "survey_sim.engines.registry",
        "EngineSettings": "survey_sim.engines.transformers",
        "TransformersEngine": "survey_sim.engines.transformers",
    },
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL",
    "Asking",
    "Bin",
    "ChatFormat",
    "ChatMessage",
    "ChoiceQuestion",
    "DataMapping",
    "DiagnosticWarning",
    "Engine",
    "EngineSettings",
    "FreeTextQuestion",
    "HumanResponses",
    "InputError",
    "MethodError",
    "ModelNotFoundError",
    "MultiSelectQuestion",
    "NumericQuestion",
    "Option",
    "Persona",
    "PlainFormat",
    "Population",
    "PromptFormat",
    "Question",
    "Questionnaire",
    "SampleRequest",
    "SampleResult",
    "ScoreRequest",
    "ScoreResult",
    "ScoringError",
    "SimulationResult",
    "SpectrumFormat",
    "SurveySimError",
    "TransformersEngine",
    "answer_schema",
    "ask",
    "bundled_file",
    "compare",
    "fit_alignment",
    "fit_calibration",
    "fit_subgroups",
    "get_format",
    "held_out_coverage",
    "load_questionnaire",
    "position_bias",
    "predict_calibrated",
    "simulate",
    "subgroup_distributions",
]
