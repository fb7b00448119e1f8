"""Dependencies point one way: every import of survey-sim's own modules (at the top of a
module or inside a function) goes to a layer below the importer's, never up and never in a
circle. Read from the source with ``ast``, so a lazy import counts like any other."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import survey_sim

PACKAGE = Path(survey_sim.__file__).parent

LAYERS: list[set[str]] = [
    {
        "errors",
        "_io",
        "_yaml",
        "_paths",
        "_lazy",
        "_codes",
        "_distribution",
        "_association",
        "_progress",
        "_version",
        "_conditions",
        "_pipes",
        "questionnaire",
        "population",
        "flow",
    },
    {"engines"},
    {"asking", "data"},
    {"runs"},
    {"analysis"},
    {"evaluate"},
    {"tune"},
    {"cli"},
    {"__init__", "testing"},
    {"planted"},
]
"""Bottom to top: the core (errors, files, the questionnaire with its flow, and population),
engines (which know nothing of surveys), asking and data, runs, analysis (PyMC models over
aligned data), evaluate (metrics and baselines; its calibrated method fits an analysis model),
tune, the command line, the package root with the test helpers, and the planted-signal survey
(which trains a model with tuning's examples and the test helpers' tokenizer)."""


def unit_of(module: str) -> str:
    """The layer unit of ``survey_sim.X...``: a subpackage or a top-level module."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports() -> dict[str, set[str]]:
    """Every survey-sim module's imports of survey-sim modules."""
    graph: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            graph[module] |= {t for t in targets if t.split(".")[0] == "survey_sim"}
    return graph


def test_every_unit_has_a_layer():
    units = {unit_of(module) for module in imports()}
    assert units <= set().union(*LAYERS), units - set().union(*LAYERS)


def test_no_module_imports_a_layer_above_its_own():
    rank = {unit: level for level, units in enumerate(LAYERS) for unit in units}
    upward = sorted(
        f"{module} -> {target}"
        for module, targets in imports().items()
        for target in targets
        if unit_of(target) != unit_of(module)
        and rank[unit_of(target)] >= rank[unit_of(module)]
        and rank[unit_of(module)] > 0  # the core's modules share one layer
    )
    assert not upward, "\n".join(upward)


def test_no_import_circle_between_units_or_core_modules():
    graph: dict[str, set[str]] = defaultdict(set)
    for module, targets in imports().items():
        for target in targets:
            source, sink = unit_of(module), unit_of(target)
            if source != sink:
                graph[source].add(sink)
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> None:
        assert node not in visiting, " -> ".join([*visiting[visiting.index(node) :], node])
        if node in done:
            return
        visiting.append(node)
        for successor in sorted(graph[node]):
            visit(successor)
        visiting.pop()
        done.add(node)

    for node in sorted(graph):
        visit(node)
