"""A grid asked as its rows: the stem is read once per persona and shared by every row's
prompt (the engines compute a shared prefix once), exact and sampled, and exported with the
stem in each row's variable label."""

from __future__ import annotations

import pyreadstat
import pytest

from survey_sim import Population, load_questionnaire, preview, simulate, simulate_respondents
from survey_sim.data.export import codebook, codebook_markdown

STEM = "How much do you trust each of these?"
GRID = f"""
id: institutions
questions:
  - id: trust
    kind: grid
    text: {STEM}
    options:
      - {{code: "1", text: A lot}}
      - {{code: "2", text: Some}}
      - {{code: "3", text: Not at all}}
    rows:
      - {{id: trust_parliament, text: The parliament}}
      - {{id: trust_police, text: The police}}
      - {{id: trust_courts, text: The courts}}
"""


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    path = tmp_path_factory.mktemp("grid") / "grid.yaml"
    path.write_text(GRID)
    return load_questionnaire(path)


@pytest.fixture(scope="module")
def two_people() -> Population:
    return Population.from_records(
        [{"id": "young", "age": "25"}, {"id": "old", "age": "70"}],
        template="You are {age} years old.",
    )


def test_rows_share_the_stem_and_their_prompts_read_it_once(grid, two_people, tiny_engine):
    prompts = preview(grid, two_people, tiny_engine)
    assert len(prompts) == 2 * 3
    for persona in ("young", "old"):
        mine = [p.prompt for p in prompts if p.persona_id == persona]
        through_stem = mine[0][: mine[0].index(STEM) + len(STEM)]
        # Every row's prompt reads the same persona and stem before its row, once.
        assert all(prompt.startswith(through_stem) for prompt in mine)
        assert all(prompt.count(STEM) == 1 for prompt in mine)
    result = simulate(grid, two_people, tiny_engine, progress=False, cache=False)
    assert result.manifest is not None
    work = result.manifest.work
    assert work.reused_tokens > 0  # the persona and the stem, computed once per persona
    assert sorted(result.population["question_id"].unique()) == sorted(grid.grid("trust").rows)


def test_a_grid_is_sampled_and_exported_with_its_stem(grid, two_people, tiny_engine, tmp_path):
    sampled = simulate(
        grid, two_people, tiny_engine, method="sample", samples=20, progress=False, cache=False
    )
    assert set(sampled.population["question_id"]) == set(grid.grid("trust").rows)
    respondents = simulate_respondents(grid, two_people, tiny_engine, n=6, progress=False)
    exported = respondents.export(tmp_path / "sample.sav", grid)
    _, meta = pyreadstat.read_sav(str(exported.paths[0]), metadataonly=True)
    labels = dict(zip(meta.column_names, meta.column_labels, strict=True))
    assert labels["trust_police"] == f"{STEM}: The police"
    book = codebook(grid, list(grid.grid("trust").rows))
    assert set(book["grid"]) == {"trust"}
    markdown = codebook_markdown(book, grid, {})
    assert markdown.count(STEM) == 1 and "## Grid `trust`" in markdown
    assert markdown.index("## Grid `trust`") < markdown.index("### `trust_parliament`")
