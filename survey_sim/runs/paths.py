"""Questions asked right after answer paths: the building block of exact joints, chains and
order experiments.

An *answer path* is a sequence of (question, code): earlier questions of an interview, each
answered with one of its options. :class:`AnswerPaths` makes the cell of a question asked
after a path (the persona, each earlier question as the persona sees it with its answer as
a turn, pipes showing the earlier answers, options in the listed order) once per persona,
question and path, asks every cell in one run (context checks, results cache, progress), and
reads each cell's option probabilities. The probability of a whole path is the product of
its answers' probabilities, each read after the path before it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from survey_sim.asking.schemas import answer_texts
from survey_sim.engines.base import Engine
from survey_sim.errors import InputError
from survey_sim.flow import check_population, personalised
from survey_sim.population import Persona, Population
from survey_sim.questionnaire import ChoiceQuestion, Question, Questionnaire
from survey_sim.runs.manifest import RunManifest
from survey_sim.runs.plan import Cell, Plan, most_prompts, too_many_prompts
from survey_sim.runs.respondents import interview_cell
from survey_sim.runs.run import execute
from survey_sim.runs.settings import SimulationSettings
from survey_sim.runs.store import ResultsCache

AnswerPath = tuple[tuple[ChoiceQuestion, str], ...]
CellKey = tuple[str, ...]


@dataclass(frozen=True)
class Reading:
    """Every cell's option probabilities (by code), and the run's manifest."""

    probs: dict[CellKey, dict[str, float]]
    manifest: RunManifest

    def probability(self, paths: AnswerPaths, persona: Persona, path: AnswerPath) -> float:
        """P(path | persona): the product of its answers' probabilities, each read after the
        part of the path before it."""
        return math.prod(
            self.probs[paths.key(persona, asked, path[:step])][code]
            for step, (asked, code) in enumerate(path)
        )


class AnswerPaths:
    """Cells of questions asked after answer paths (module docstring), made once each.

    ``available``: the memory to plan for (default: what is available now); making more
    cells than fit in 80% of it is refused, before any model work.

    Raises:
        InputError: ``settings`` permute option orders, or a persona attribute the
            questionnaire names that the personas lack.
    """

    def __init__(
        self,
        questionnaire: Questionnaire,
        population: Population,
        engine: Engine,
        settings: SimulationSettings,
        what: str,
        available: int | None = None,
    ) -> None:
        if settings.permute:
            raise InputError(
                what, f"{what} is read in the listed option order; drop permute (--permute)"
            )
        check_population(questionnaire, population)
        self.questionnaire, self.population, self.engine = questionnaire, population, engine
        self.settings, self.what = settings, what
        self.prompt_format = settings.prompt_format()
        self.started = time.time()
        self.cells: dict[CellKey, Cell] = {}
        self.most_cells = most_prompts(available)

    def key(self, persona: Persona, question: ChoiceQuestion, path: AnswerPath) -> CellKey:
        """The key of ``question``'s cell for ``persona`` after ``path`` (made the first
        time it is asked for)."""
        key = (persona.id, question.id, *(part for q, code in path for part in (q.id, code)))
        if key not in self.cells:
            if len(self.cells) >= self.most_cells:
                raise too_many_prompts(
                    self.what,
                    self.most_cells,
                    "read fewer pairs, shorter chains or arms, or fewer personas at a time",
                )
            self.cells[key] = self._cell(persona, question, path)
        return key

    def read(self, *, cache: ResultsCache | bool, progress: bool, description: str) -> Reading:
        """Ask every cell made so far, once, and read them."""
        plan = Plan.of(
            self.cells.values(),
            self.questionnaire,
            self.population,
            self.settings,
            self.prompt_format,
            what=f"{self.what} of {self.questionnaire.id!r}",
            remedy="Shorten the persona descriptions or the questions",
        )
        done = execute(
            plan,
            self.engine,
            started=self.started,
            cache=cache,
            progress=progress,
            description=description,
        )
        probs = {
            key: dict(
                zip(
                    (o.code for o in cell.asking.outcomes),
                    cell.asking.read_scores([result]).probs,
                    strict=True,
                )
            )
            for (key, cell), result in zip(self.cells.items(), done.scores, strict=True)
        }
        return Reading(probs, done.manifest)

    def _cell(self, persona: Persona, question: ChoiceQuestion, path: AnswerPath) -> Cell:
        earlier: list[tuple[Question, str]] = []
        answers: dict[str, str] = {}
        for asked, code in path:
            shown = personalised(asked, persona, answers)
            assert isinstance(shown, ChoiceQuestion)
            labels = answer_texts(shown, self.prompt_format.answer)
            earlier.append((shown, labels[[o.code for o in shown.options].index(code)]))
            answers[asked.id] = asked.option(code).text
        return interview_cell(
            persona,
            personalised(question, persona, answers),
            None,
            earlier,
            prompt_format=self.prompt_format,
            chat=self.engine,
            instructions=self.questionnaire.instructions,
        )


def choice_questions(
    questionnaire: Questionnaire, ids: Sequence[str], source: str, context: str = ""
) -> list[ChoiceQuestion]:
    """The questions ``ids`` names, each known and single-choice or ordinal (the kinds read
    exactly after a path).

    Raises:
        InputError: an unknown question, or another kind (from ``source``; the message
            starts with ``context``).
    """
    questions: list[ChoiceQuestion] = []
    for name in ids:
        if name not in questionnaire.listed_order:
            raise InputError(source, f"{context}{name!r} is not a question of {questionnaire.id!r}")
        question = questionnaire.question(name)
        if not isinstance(question, ChoiceQuestion):
            raise InputError(
                source,
                f"{context}{question.id!r} is a {question.kind} question; it is read exactly "
                "after other answers only when single-choice or ordinal (simulated respondents "
                "sample the rest)",
            )
        questions.append(question)
    return questions
