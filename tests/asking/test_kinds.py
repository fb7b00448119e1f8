"""Multi-select, numeric and free-text questions: loading, schemas, exact and sampled answers."""

from __future__ import annotations

import itertools
import json
import math

import polars as pl
import pytest

from survey_sim import InputError, Population, SimulationResult, simulate
from survey_sim.asking import get_format
from survey_sim.asking.formats import PromptContext
from survey_sim.asking.kinds import ask
from survey_sim.asking.schemas import MAX_SELECTIONS, answer_schema, value_schema
from survey_sim.data.bundled import bundled_file
from survey_sim.engines.base import SampleRequest
from survey_sim.errors import MethodError
from survey_sim.questionnaire import load_questionnaire

DESCRIPTION = "You are a 52-year-old farmer from Iowa."


@pytest.fixture(scope="module")
def kinds():
    return load_questionnaire(bundled_file("questionnaires", "question_kinds.yaml"))


@pytest.fixture(scope="module")
def two_personas(demo_population) -> Population:
    return Population(list(demo_population)[:2])


def write(tmp_path, text: str):
    path = tmp_path / "q.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_every_kind_loads(kinds):
    assert [q.kind for q in kinds] == ["ordinal", "multi_select", "rank", "numeric", "free_text"]
    tvhours = kinds.question("tvhours")
    assert [o.code for o in tvhours.outcomes] == ["0-1", "2-3", "4+"]
    assert [o.text for o in tvhours.outcomes] == ["0 to 1", "2 to 3", "4 or more"]
    assert tvhours.bin_of(3).code == "2-3" and tvhours.bin_of(24).code == "4+"
    assert kinds.question("mip").outcomes == ()


def test_small_integer_ranges_get_one_outcome_per_value(tmp_path):
    path = write(
        tmp_path,
        "id: t\nquestions:\n  - {id: n, kind: numeric, text: How many, minimum: 0, maximum: 5}\n",
    )
    question = load_questionnaire(path).question("n")
    assert [o.code for o in question.outcomes] == ["0", "1", "2", "3", "4", "5"]


@pytest.mark.parametrize(
    ("question", "message"),
    [
        (
            "{id: n, kind: numeric, text: x, minimum: 0, maximum: 9, bins: "
            "[{code: a, min: 0, max: 3}, {code: b, min: 5, max: 9}]}",
            "bin 'b' starts at 5; expected 4",
        ),
        (
            "{id: n, kind: numeric, text: x, minimum: 0, maximum: 9, "
            "bins: [{code: a, min: 0, max: 8}]}",
            "the last bin ends at 8, not at maximum 9",
        ),
        ("{id: n, kind: numeric, text: x, minimum: 0.5, maximum: 9}", "whole-number minimum"),
        ("{id: n, kind: numeric, text: x, minimum: 3, maximum: 3}", "must be below maximum"),
        (
            "{id: m, kind: multi_select, text: x, max_selected: 3, options: "
            "[{code: 1, text: a}, {code: 2, text: b}]}",
            "max_selected is 3 but there are 2 options",
        ),
        ("{id: f, kind: free_text, text: x, max_chars: 0}", "field 'max_chars'"),
        ("{id: f, kind: essay, text: x}", "question 'f'"),
    ],
)
def test_bad_questions_name_file_line_and_question(tmp_path, question, message):
    path = write(
        tmp_path, f"id: t\nquestions:\n  - {{id: ok, kind: free_text, text: y}}\n  - {question}\n"
    )
    with pytest.raises(InputError) as error:
        load_questionnaire(path)
    text = str(error.value)
    assert text.startswith(f"{path}:4:") and message in text, text


def test_schemas_for_every_kind(kinds):
    news = kinds.question("news_sources")
    schema = value_schema(news)
    selections = schema["enum"]
    assert len(selections) == 2**5  # every subset, each once
    assert all(len(set(s)) == len(s) for s in selections)  # distinct labels by construction
    assert all(s == sorted(s) for s in selections)  # in the order the options are shown
    assert schema["items"] == {"enum": ["A", "B", "C", "D", "E"]} and schema["uniqueItems"]
    assert value_schema(kinds.question("tvhours")) == {
        "type": "integer",
        "minimum": 0,
        "maximum": 24,
    }
    assert value_schema(kinds.question("mip")) == {
        "type": "string",
        "minLength": 1,
        "maxLength": 60,
    }
    wrapped = answer_schema(kinds.question("mip"), reason_chars=20)
    assert wrapped["required"] == ["answer", "reason"]


def test_selection_bounds_and_the_cap(kinds):
    news = kinds.question("news_sources")
    bounded = news.model_copy(update={"min_selected": 1, "max_selected": 2})
    selections = value_schema(bounded)["enum"]
    assert len(selections) == 5 + 10 and all(1 <= len(s) <= 2 for s in selections)
    many = news.model_validate(
        news.model_dump() | {"options": [{"code": str(i), "text": f"o{i}"} for i in range(13)]}
    )
    assert sum(math.comb(13, k) for k in range(14)) > MAX_SELECTIONS
    with pytest.raises(ValueError, match="set max_selected, or use the exact method"):
        value_schema(many)


def valid(question, value) -> bool:
    """An independent check of a sampled value against the question (not the schema code)."""
    match question.kind:
        case "multi_select":
            labels = [o.label for o in question.options]
            return (
                isinstance(value, list)
                and len(set(value)) == len(value)
                and all(item in labels for item in value)
                and question.min_selected <= len(value) <= question.most_selected
            )
        case "numeric":
            return isinstance(value, int) and question.minimum <= value <= question.maximum
        case "free_text":
            return isinstance(value, str) and 1 <= len(value) <= question.max_chars
    raise AssertionError(question.kind)


@pytest.mark.parametrize("question_id", ["news_sources", "tvhours", "mip"])
def test_every_sampled_answer_is_valid(tiny_engine, kinds, question_id):
    question = kinds.question(question_id)
    asking = ask(question, get_format("chat"))
    prompt = asking.sample_prompt(PromptContext(DESCRIPTION, tiny_engine))
    result = tiny_engine.sample_one(
        SampleRequest(prompt, asking.schema(), n=60, seed=3, max_new_tokens=asking.token_limit())
    )
    assert len(result.values) == 60
    for text, value, cut, bad in zip(
        result.texts, result.values, result.truncated, result.invalid, strict=True
    ):
        if bad:  # the grammar engine let it through; the check after parsing caught it
            assert value is None and not valid(question, json.loads(text, strict=False))
        elif not cut:
            assert valid(question, value), value
    assert sum(result.truncated) + sum(result.invalid) < 60


def test_exact_multi_select_reads_yes_against_no(tiny_engine, kinds):
    question = kinds.question("news_sources")
    asking = ask(question, get_format("spectrum"))
    requests = asking.exact_requests(PromptContext(DESCRIPTION, tiny_engine))
    assert len(requests) == 5 and all(r.continuations == ("Yes", "No") for r in requests)
    assert 'Would you select option D, "Social media"?' in requests[3].prefix
    results = tiny_engine.score(requests)
    distribution = asking.read_scores(results)
    for result, prob in zip(results, distribution.probs, strict=True):
        yes, no = (math.exp(lp) for lp in result.logprobs)
        assert prob == pytest.approx(yes / (yes + no))
    assert min(distribution.probs) > 0 and max(distribution.probs) < 1


def test_exact_numeric_sums_every_value_into_its_bin(tiny_engine, kinds):
    question = kinds.question("tvhours")
    asking = ask(question, get_format("chat"))
    (request,) = asking.exact_requests(PromptContext(DESCRIPTION, tiny_engine))
    assert len(request.continuations) == 25  # 0..24, end-of-turn scored ("2" begins "24")
    assert request.continuations[24] == "24<|im_end|>"
    (result,) = tiny_engine.score([request])
    values = [math.exp(lp) for lp in result.logprobs]
    expected = [sum(values[0:2]), sum(values[2:4]), sum(values[4:25])]
    distribution = asking.read_scores([result])
    assert distribution.probs == pytest.approx([v / sum(expected) for v in expected])
    assert distribution.coverage[0] == pytest.approx(sum(values))


def test_methods_that_cannot_apply_fail_before_model_work(tiny_engine, kinds, two_personas):
    before = tiny_engine.stats.requests
    # No results store: it must be the plan that stops the run, not stored answers.
    exact_free_text = {"free_text": "exact"}
    with pytest.raises(MethodError, match=r"'mip' is free text.*method='sample'"):
        simulate(
            kinds, two_personas, tiny_engine, progress=False, cache=False, method=exact_free_text
        )
    many = kinds.question("news_sources").model_validate(
        kinds.question("news_sources").model_dump()
        | {"options": [{"code": str(i), "text": f"o{i}"} for i in range(13)]}
    )
    too_many = kinds.model_copy(update={"questions": (kinds.question("tvhours"), many)})
    with pytest.raises(MethodError, match="too many to sample"):  # tvhours would be exact
        simulate(
            too_many, two_personas, tiny_engine, method={"multi_select": "sample"}, cache=False
        )
    real = kinds.question("tvhours").model_copy(update={"integer": False, "bins": None})
    with pytest.raises(MethodError, match="cannot be scored exactly"):
        ask(real, get_format("chat")).exact_requests(PromptContext(DESCRIPTION, tiny_engine))
    with pytest.raises(MethodError, match="unknown question kind 'essay'"):
        simulate(kinds, two_personas, tiny_engine, method={"essay": "sample"}, cache=False)
    with pytest.raises(MethodError, match="'exact' or 'sample'"):
        simulate(kinds, two_personas, tiny_engine, method="guess", cache=False)
    assert tiny_engine.stats.requests == before


def test_simulate_every_kind_exact_and_sampled(tiny_engine, kinds, two_personas, tmp_path):
    result = simulate(
        kinds,
        two_personas,
        tiny_engine,
        method={"free_text": "sample"},
        samples=8,
        progress=False,
    )
    responses = result.responses
    assert responses.group_by("question_id", maintain_order=True).len()["len"].to_list() == [
        2 * 4,
        2 * 5,
        2 * 6,  # every ranking of 3 options
        2 * 3,
    ]
    assert responses.filter(pl.col("kind") != "multi_select")["method"].unique().to_list() == [
        "exact"
    ]
    sums = responses.group_by("persona_id", "question_id").agg(pl.col("prob").sum())
    multi = sums.filter(pl.col("question_id") == "news_sources")["prob"]
    assert sums.filter(pl.col("question_id") != "news_sources")["prob"].to_list() == pytest.approx(
        [1.0] * 6
    )
    assert multi.to_list() != pytest.approx([1.0] * 2)  # selection probabilities
    draws = result.draws
    assert draws.height == 2 * 8 and draws["question_id"].unique().to_list() == ["mip"]
    assert draws["seed"].n_unique() == 2  # one seed per persona's prompt
    for row in draws.iter_rows(named=True):
        usable = not (row["truncated"] or row["invalid"])
        assert usable == (row["answer"] is not None)
        assert not usable or isinstance(json.loads(row["answer"]), str)

    sampled = simulate(
        kinds.select(["news_sources", "tvhours"]),
        two_personas,
        tiny_engine,
        method="sample",
        samples=12,
        progress=False,
    )
    rows = sampled.responses
    assert rows["method"].unique().to_list() == ["sample"]
    assert rows["samples"].max() <= 12 and rows["coverage"].is_null().all()
    for (persona, question), cell in rows.group_by("persona_id", "question_id"):
        draws = sampled.draws.filter(
            pl.col("persona_id") == persona, pl.col("question_id") == question
        )
        values = [json.loads(a) for a in draws["answer"].drop_nulls()]
        for row in cell.iter_rows(named=True):
            if question == "news_sources":
                label = row["option_label"]
                hits = sum(label in value for value in values)
            else:
                bin_ = kinds.question("tvhours").bin_of
                hits = sum(bin_(value).code == row["option_code"] for value in values)
            assert row["prob"] == pytest.approx(hits / len(values))

    written = sampled.write_parquet(tmp_path / "r.parquet")
    assert [p.name for p in written] == [
        "r.parquet",
        "r.population.parquet",
        "r.draws.parquet",
        "r.manifest.json",
    ]
    again = SimulationResult.read_parquet(tmp_path / "r.parquet")
    assert again.draws.equals(sampled.draws) and again.responses.equals(sampled.responses)


def test_multi_select_orders_map_back(tiny_engine, kinds, two_personas):
    news = kinds.select(["news_sources"])
    result = simulate(news, two_personas, tiny_engine, permute=True, progress=False)
    orders = result.responses["order"].unique()
    assert orders.len() == 5  # cyclic shifts of five options
    codes = [o.code for o in kinds.question("news_sources").options]
    assert all(sorted(order.split("|")) == sorted(codes) for order in orders)
    population = result.population
    assert population.height == 5 and population["personas"].to_list() == [2] * 5
    for code in codes:
        shown = result.responses.filter(pl.col("option_code") == code)
        assert sorted(shown["shown_position"].unique().to_list()) == [1, 2, 3, 4, 5]


def test_selections_are_listed_in_shown_order(kinds):
    labels = [o.label for o in kinds.question("news_sources").options]
    selections = value_schema(kinds.question("news_sources"))["enum"]
    expected = [list(c) for k in range(6) for c in itertools.combinations(labels, k)]
    assert selections == expected


def test_the_check_after_parsing(kinds):
    from survey_sim.engines.validation import conforms

    news = value_schema(kinds.question("news_sources"))
    assert conforms(["A", "C"], news) and conforms([], news)
    assert not conforms(["C", "A"], news)  # not in shown order: not a listed selection
    assert not conforms(["A", "A"], {**news, "enum": [["A", "A"]]})  # uniqueItems still holds
    hours = value_schema(kinds.question("tvhours"))
    assert conforms(24, hours) and not conforms(25, hours) and not conforms(2.5, hours)
    assert not conforms(True, hours)  # a JSON boolean is not a number
    text = answer_schema(kinds.question("mip"), reason_chars=5)
    assert conforms({"answer": "Jobs", "reason": "money"}, text)
    assert not conforms({"answer": "x" * 61, "reason": "money"}, text)
    assert not conforms({"answer": "Jobs"}, text)
    assert not conforms({"answer": "Jobs", "reason": "r", "extra": 1}, text)
    assert conforms(1.0, {"enum": [1]}) and not conforms(True, {"enum": [1]})
