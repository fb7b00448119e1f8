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

from survey_sim.bundled import bundled_file
from survey_sim.engines import (
    DEFAULT_MODEL,
    ChatMessage,
    Engine,
    EngineSettings,
    ScoreRequest,
    ScoreResult,
    TransformersEngine,
)
from survey_sim.errors import InputError, ModelNotFoundError, ScoringError, SurveySimError
from survey_sim.population import Persona, Population
from survey_sim.prompts import ChatFormat, PlainFormat, PromptFormat, SpectrumFormat, get_format
from survey_sim.questionnaire import (
    ChoiceQuestion,
    Option,
    Question,
    Questionnaire,
    load_questionnaire,
)
from survey_sim.simulate import SimulationResult, simulate

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL",
    "ChatFormat",
    "ChatMessage",
    "ChoiceQuestion",
    "Engine",
    "EngineSettings",
    "InputError",
    "ModelNotFoundError",
    "Option",
    "Persona",
    "PlainFormat",
    "Population",
    "PromptFormat",
    "Question",
    "Questionnaire",
    "ScoreRequest",
    "ScoreResult",
    "ScoringError",
    "SimulationResult",
    "SpectrumFormat",
    "SurveySimError",
    "TransformersEngine",
    "bundled_file",
    "get_format",
    "load_questionnaire",
    "simulate",
]
