"""survey-sim against the ways users would otherwise get the same answer distributions.

One study (default: the 8 demo personas x the 18 GSS 2018 spending questions, chat format,
letter answers) done four ways, in one process, over the same loaded weights and threads:

* **survey-sim exact**: ``simulate()``, the default path (every option's probability read
  from one tree-shaped pass per persona, prefixes shared);
* **per-option re-encoding** (the Spectrum release's way): one full forward pass per
  (prompt, option), nothing shared (the engine's ``prefix_reuse="none"``);
* **first-token scoring** (OpinionQA's way): one forward pass per prompt; each option's
  probability is the next-token probability of its answer's *first* token, renormalised
  over the options. With letter answers that token is the whole answer; with the options'
  texts as answers (``--text-answers``) options that begin alike ("Too little", "Too much")
  get the same number, which no renormalisation can undo;
* **independent sampling** (EDSL's and the synthetic-respondent benchmarks' way): every
  draw a separate request that sends the whole prompt again and decodes a short free answer
  (plain ``transformers`` ``generate``, temperature 1, no top-k/top-p, no prefix sharing),
  parsed as an answer where it names one option. Drawn for the first ``--sample-personas``
  personas at ``--draws`` per question; the cost per draw measured there is scaled to the
  whole study.

Accuracy is total variation (TV) from survey-sim's exact distribution, per prompt. For
sampling it also reports the draws each prompt needs for an expected TV of 0.02 from its
own exact distribution (valid draws ``n`` from the normal approximation
``E TV = sum_i sqrt(p_i (1 - p_i)) / sqrt(2 pi n)``, checked by drawing multinomial samples
of that size; divided by the measured share of draws that parse), and what that costs.

    python benchmarks/peers.py                          # the demo study, then a 40 x 18 grid
    python benchmarks/peers.py --model DIR --sample-personas 1 --draws 4 --grid-personas 0
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from prefix_reuse import persona_grid

from survey_sim import (
    EngineSettings,
    Population,
    TransformersEngine,
    bundled_file,
    load_questionnaire,
    simulate,
)
from survey_sim.asking.formats import PromptFormat, get_format
from survey_sim.asking.kinds import choice_request
from survey_sim.asking.schemas import option_for_value
from survey_sim.engines.base import ScoreRequest
from survey_sim.engines.registry import resolve_model
from survey_sim.evaluate.metrics import total_variation, total_variation_rows
from survey_sim.questionnaire import ChoiceQuestion, Questionnaire

ROOT = Path(__file__).parents[1]

TARGET_TV = 0.02
"""The accuracy every way is costed at: expected total variation from the exact distribution."""
SIMULATED_SAMPLES = 4000
"""Multinomial samples checking each computed number of draws."""
SAMPLING_BATCH = 64
"""Independent generations run side by side (each holds its own copy of the prompt)."""


@dataclass(frozen=True)
class Way:
    """One way of doing the study: its cost, and its distributions (one per prompt, in the
    study's order; fewer when only the first prompts were done)."""

    name: str
    tokens: float
    seconds: float
    probs: list[np.ndarray]
    estimated: bool = False
    note: str = ""

    def distances(self, reference: Way) -> list[float]:
        """Total variation from ``reference``'s distribution, per prompt done."""
        return [total_variation(p, q) for p, q in zip(self.probs, reference.probs, strict=False)]


def draws_for_target(probs: np.ndarray, target: float = TARGET_TV) -> int:
    """Valid draws whose empirical distribution is expected to be ``target`` from ``probs``
    in total variation (normal approximation to each option's binomial error)."""
    spread = float(np.sqrt(probs * (1 - probs)).sum())
    return max(1, math.ceil((spread / (target * math.sqrt(2 * math.pi))) ** 2))


def simulated_tv(probs: np.ndarray, draws: int, rng: np.random.Generator) -> float:
    """Mean total variation of ``draws`` multinomial draws from ``probs``."""
    normalised = probs / probs.sum()
    counts = rng.multinomial(draws, normalised, size=SIMULATED_SAMPLES)
    return float(total_variation_rows(counts / draws, normalised).mean())


def survey_sim_exact(
    engine: TransformersEngine,
    questionnaire: Questionnaire,
    population: Population,
    prompt_format: PromptFormat,
) -> Way:
    """The default path; its distributions in the order persona x question."""
    engine.clear_cache()
    before = engine.stats.computed_tokens
    started = time.perf_counter()
    result = simulate(
        questionnaire,
        population,
        engine,
        format=prompt_format.name,
        answer=prompt_format.answer,
        progress=False,
        cache=False,
    )
    seconds = time.perf_counter() - started
    probs = []
    frame = result.responses
    for persona in population:
        for question in questionnaire.questions:
            rows = frame.filter(
                (frame["persona_id"] == persona.id) & (frame["question_id"] == question.id)
            )
            by_code = dict(zip(rows["option_code"], rows["prob"], strict=True))
            probs.append(np.array([by_code[option.code] for option in question.options]))
    return Way("survey-sim exact", engine.stats.computed_tokens - before, seconds, probs)


def re_encoding(base: TransformersEngine, requests: Sequence[ScoreRequest]) -> Way:
    """One full forward pass per (prompt, option): the engine's ``none`` strategy."""
    engine = TransformersEngine(
        base.model,
        base.tokenizer,
        model_id=base.model_id,
        settings=base.settings.model_copy(update={"prefix_reuse": "none"}),
    )
    started = time.perf_counter()
    results = engine.score(requests)
    seconds = time.perf_counter() - started
    probs = [np.array(result.probs) for result in results]
    return Way("per-option re-encoding", engine.stats.computed_tokens, seconds, probs)


@torch.inference_mode()
def first_token(engine: TransformersEngine, requests: Sequence[ScoreRequest], name: str) -> Way:
    """One forward pass per prompt; each option scored by its first answer token alone."""
    tokens = collisions = 0
    probs = []
    started = time.perf_counter()
    for request in requests:
        item = engine.text.tokenize_request(request)
        logits = engine.model(torch.tensor([item.shared]), logits_to_keep=1).logits[0, -1]
        next_token = torch.softmax(logits.float(), dim=-1)
        first_ids = [continuation[0] for continuation in item.continuations]
        firsts = next_token[first_ids].numpy()
        probs.append(firsts / firsts.sum())
        tokens += len(item.shared)
        collisions += len(set(first_ids)) < len(first_ids)
    seconds = time.perf_counter() - started
    note = f"{collisions} of {len(requests)} prompts have options sharing a first token"
    return Way(name, tokens, seconds, probs, note=note)


def parse_answer(reply: str, question: ChoiceQuestion, prompt_format: PromptFormat) -> str | None:
    """The option a free reply names, or ``None``: the reply as the JSON answer constrained
    sampling would write, else its start stripped of quotes and brackets: an option's label
    followed by a non-word character or the end (letter answers), or an option's text
    (case-insensitive)."""
    text = reply.strip()
    with contextlib.suppress(ValueError, KeyError, TypeError):
        return option_for_value(question, json.loads(text), prompt_format.answer).code
    text = text.lstrip("\"'([{ ")
    for option in question.options:
        if prompt_format.answer == "label" and re.match(rf"{re.escape(option.label)}(\W|$)", text):
            return option.code
        if text.lower().startswith(option.text.lower()):
            return option.code
    return None


@dataclass(frozen=True)
class Sampled:
    """Independent draws for some prompts: cost, parsed shares, parse rate."""

    prompts: int
    draws: int
    tokens: int
    seconds: float
    probs: list[np.ndarray]
    parsed: int


@torch.inference_mode()
def independent_sampling(
    engine: TransformersEngine,
    requests: Sequence[ScoreRequest],
    questions: Sequence[ChoiceQuestion],
    prompt_format: PromptFormat,
    draws: int,
    max_new_tokens: int,
    seed: int,
) -> Sampled:
    """``draws`` separate generations per prompt, the prompt computed again for each
    (generated :data:`SAMPLING_BATCH` at a time, so that memory does not grow with
    ``draws``)."""
    torch.manual_seed(seed)
    pad = engine.tokenizer.pad_token_id or engine.tokenizer.eos_token_id
    tokens = parsed = 0
    probs = []
    started = time.perf_counter()
    for request, question in zip(requests, questions, strict=True):
        prompt = torch.tensor([engine.text.tokenize_request(request).shared])
        replies = []
        for start in range(0, draws, SAMPLING_BATCH):
            out = engine.model.generate(
                prompt,
                attention_mask=torch.ones_like(prompt),
                do_sample=True,
                temperature=1.0,
                top_k=0,
                top_p=1.0,
                max_new_tokens=max_new_tokens,
                num_return_sequences=min(SAMPLING_BATCH, draws - start),
                pad_token_id=pad,
            )
            generated = out[:, prompt.shape[1] :]
            tokens += out.shape[0] * prompt.shape[1] + generated.numel()
            replies += engine.tokenizer.batch_decode(generated, skip_special_tokens=True)
        codes = [parse_answer(reply, question, prompt_format) for reply in replies]
        valid = [code for code in codes if code is not None]
        parsed += len(valid)
        shares = np.array([valid.count(option.code) for option in question.options], float)
        probs.append(shares / max(1, len(valid)))
    seconds = time.perf_counter() - started
    return Sampled(len(requests), draws * len(requests), tokens, seconds, probs, parsed)


def study_requests(
    questionnaire: Questionnaire,
    population: Population,
    prompt_format: PromptFormat,
    engine: TransformersEngine,
) -> tuple[list[ScoreRequest], list[ChoiceQuestion]]:
    """The study's requests (persona x question, as ``simulate`` sends them) and questions."""
    pairs = [(p, q) for p in population for q in questionnaire.questions]
    requests = [
        choice_request(q, prompt_format, description=p.description, chat=engine) for p, q in pairs
    ]
    return requests, [q for _, q in pairs]


def report(title: str, ways: Sequence[Way], reference: Way) -> None:
    """A table of cost (and ratio to ``reference``) and accuracy against ``reference``."""
    print(f"\n{title}")
    header = (
        f"{'way':<46} {'tokens run':>11} {'seconds':>8} {'tokens x':>9} {'time x':>8} "
        f"{'mean TV':>8} {'max TV':>7} {'prompts':>8}"
    )
    print(header)
    print("-" * len(header))
    for way in ways:
        distances = way.distances(reference)
        accuracy = (
            f"{statistics.mean(distances):>8.4f} {max(distances):>7.4f} {len(distances):>8}"
            if distances
            else f"{'-':>8} {'-':>7} {'-':>8}"
        )
        mark = " (est.)" if way.estimated else ""
        print(
            f"{way.name + mark:<46} {way.tokens:>11.0f} {way.seconds:>8.1f} "
            f"{way.tokens / reference.tokens:>8.1f}x {way.seconds / reference.seconds:>7.1f}x "
            f"{accuracy}"
        )
        if way.note:
            print(f"{'':<4}{way.note}")


def sampling_ways(sampled: Sampled, exact: Way, draws: int, rng: np.random.Generator) -> list[Way]:
    """The sampling rows for the whole study, the cost per draw measured on the sampled
    prompts and scaled; prints what they rest on."""
    parse_rate = sampled.parsed / sampled.draws
    per_draw_seconds = sampled.seconds / sampled.draws
    per_draw_tokens = sampled.tokens / sampled.draws
    own = exact.probs[: sampled.prompts]
    observed = [total_variation(p, q) for p, q in zip(sampled.probs, own, strict=True)]
    valid_per_prompt = max(1, round(draws * parse_rate))
    noise = [simulated_tv(p, valid_per_prompt, rng) for p in own]
    needed_valid = [draws_for_target(p) for p in exact.probs]
    checks = [simulated_tv(p, n, rng) for p, n in zip(exact.probs, needed_valid, strict=True)]
    needed = [math.ceil(n / parse_rate) for n in needed_valid] if parse_rate else []
    print(
        f"\nIndependent sampling, measured on the first {sampled.prompts} prompts x {draws} "
        f"draws: {sampled.parsed} of {sampled.draws} replies name one option (parse rate "
        f"{parse_rate:.2f}); {1000 * per_draw_seconds:.0f} ms and {per_draw_tokens:.0f} tokens "
        f"run per draw.\n"
        f"  TV from exact at {draws} draws: mean {statistics.mean(observed):.3f}; multinomial "
        f"noise alone at {valid_per_prompt} valid draws would give {statistics.mean(noise):.3f} "
        f"(the difference is the free replies' own bias).\n"
        f"  Valid draws for an expected TV of {TARGET_TV}, per prompt of the study: median "
        f"{statistics.median(needed_valid):.0f} (range {min(needed_valid)}-{max(needed_valid)}); "
        f"checked: {SIMULATED_SAMPLES} multinomial samples of that size are "
        f"{statistics.mean(checks):.4f} from their distribution on average (max over prompts "
        f"{max(checks):.4f})."
    )
    ways = [
        Way(
            f"independent sampling, {draws} draws",
            per_draw_tokens * draws * len(exact.probs),
            per_draw_seconds * draws * len(exact.probs),
            sampled.probs,
            estimated=True,
        )
    ]
    if not needed:
        print("  No reply parsed: no number of draws reaches the target.")
        return ways
    print(
        f"  With the parse rate: median {statistics.median(needed):.0f} draws per prompt, "
        f"{sum(needed)} for the study."
    )
    ways.append(
        Way(
            f"independent sampling, {sum(needed)} draws",
            per_draw_tokens * sum(needed),
            per_draw_seconds * sum(needed),
            [],
            estimated=True,
            note=f"expected TV {TARGET_TV} if the replies were unbiased (see above)",
        )
    )
    return ways


def edsl_on_sglang(
    edsl_python: str,
    model: str | None,
    questionnaire: Questionnaire,
    population: Population,
    iterations: int,
    max_tokens: int,
    exact_probs: Sequence[np.ndarray],
) -> tuple[Way, int]:
    """EDSL itself answering the study (``_edsl_driver.py``), against an SGLang server
    serving the same model (started with the test tier's flags for this machine): its cost,
    its answers' shares per prompt (persona x question), and the requests the server
    answered."""
    sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "sglang_tier")]
    from servers import start  # the test tier's flags for this machine

    folder = Path(tempfile.mkdtemp(prefix="peers-edsl-"))
    study = {
        "questions": [
            {
                "id": q.id,
                "text": "\n\n".join(t for t in (q.preamble, q.text) if t),
                "options": [o.text for o in q.options],
            }
            for q in questionnaire.questions
        ],
        "personas": [{"id": p.id, "description": p.description} for p in population],
    }
    (folder / "study.json").write_text(json.dumps(study))
    path, _ = resolve_model(model)
    server = start(path)
    try:
        done = subprocess.run(
            [
                edsl_python,
                str(ROOT / "benchmarks" / "_edsl_driver.py"),
                str(folder / "study.json"),
                f"{server.url}/v1",
                str(path),
                str(iterations),
                str(max_tokens),
                str(folder / "out.json"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"EDSL failed:\n{done.stderr[-3000:]}")
        requests = server.log.read_text(errors="replace").count("POST /v1/chat/completions")
    finally:
        server.stop()
    out = json.loads((folder / "out.json").read_text())
    probs = []
    for persona in population:
        for question in questionnaire.questions:
            answers = [
                row["answer"]
                for row in out["rows"]
                if row["persona"] == persona.id and row["question"] == question.id
            ]
            shares = np.array([answers.count(o.text) for o in question.options], float)
            probs.append(shares / max(1.0, shares.sum()))
    named = sum(row["answer"] is not None for row in out["rows"])
    if named:
        needed = sum(draws_for_target(p) for p in exact_probs) * len(out["rows"]) / named
        print(
            f"\nEDSL: {named} of {len(out['rows'])} answers name an option. An expected TV of "
            f"{TARGET_TV} from its own distributions (spread as survey-sim's exact ones) takes "
            f"about {needed:.0f} requests for these {len(exact_probs)} prompts: "
            f"{needed * out['seconds'] / len(out['rows']):.0f} s at the {len(out['rows'])} "
            "requests' pace."
        )
    else:
        print(f"\nEDSL: none of {len(out['rows'])} answers names an option.")
    print(f"  EDSL's failed tasks by exception: {out['failures'] or 'none'}")
    way = Way(
        f"EDSL, {iterations} draws, on SGLang",
        sum(row["tokens"] for row in out["rows"]),
        out["seconds"],
        probs,
        note=f"EDSL's own prompt wording; max_tokens {max_tokens}; tokens as EDSL counts "
        "them (prompt + reply per request; SGLang's radix cache reuses repeated prompts)",
    )
    return way, requests


def equal_accuracy(ways: Sequence[Way], exact: Way) -> None:
    """Each way's time for the study relative to survey-sim exact at an accuracy of
    :data:`TARGET_TV`, or why it cannot get there."""
    print(f"\nTime at equal accuracy (mean TV <= {TARGET_TV} from exact), relative to survey-sim:")
    for way in ways[1:]:
        distances = way.distances(exact)
        if distances and statistics.mean(distances) > TARGET_TV:
            verdict = f"does not get there (mean TV {statistics.mean(distances):.3f})"
        else:
            verdict = f"{way.seconds / exact.seconds:.1f}x"
        print(f"  {way.name}: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model", default=None, help="model folder; none: the default model")
    parser.add_argument("--personas", type=int, default=8, help="demo personas in the study")
    parser.add_argument("--sample-personas", type=int, default=1, help="personas sampled")
    parser.add_argument("--draws", type=int, default=30, help="independent draws per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=8, help="per free reply")
    parser.add_argument("--grid-personas", type=int, default=40, help="larger grid; 0: none")
    parser.add_argument("--threads", type=int, default=None, help="torch threads; none: all")
    parser.add_argument("--seed", type=int, default=0, help="of the independent draws")
    parser.add_argument(
        "--edsl-python",
        default=None,
        help="an interpreter with EDSL installed: also run EDSL itself on the sampled personas "
        "against an SGLang server (from .venv-sglang) serving the same model",
    )
    parser.add_argument("--edsl-max-tokens", type=int, default=30, help="EDSL's reply limit")
    args = parser.parse_args()

    engine = TransformersEngine.from_pretrained(
        args.model, settings=EngineSettings(threads=args.threads)
    )
    questionnaire = load_questionnaire(bundled_file("questionnaires", "gss_spending_2018.yaml"))
    demo = Population.from_file(bundled_file("personas", "us_adults_demo.yaml"))
    population = Population(list(demo)[: args.personas], id="demo")
    letters, texts = get_format("chat"), get_format("chat", answer="text")
    requests, questions = study_requests(questionnaire, population, letters, engine)
    print(
        f"{len(population)} personas x {len(questionnaire.questions)} questions = "
        f"{len(requests)} prompts; model {engine.model_id}; chat format; torch threads "
        f"{torch.get_num_threads()}"
    )
    engine.score(requests[:1])  # one-time start-up costs stay out of the timings
    exact = survey_sim_exact(engine, questionnaire, population, letters)
    ways = [exact, re_encoding(engine, requests), first_token(engine, requests, "first-token")]
    disagreement = max(ways[1].distances(exact))
    if disagreement > 1e-4:
        raise SystemExit(f"survey-sim exact and re-encoding disagree: TV {disagreement:.2e}")
    sampled_count = args.sample_personas * len(questionnaire.questions)
    sampled = independent_sampling(
        engine,
        requests[:sampled_count],
        questions[:sampled_count],
        letters,
        args.draws,
        args.max_new_tokens,
        args.seed,
    )
    ways += sampling_ways(sampled, exact, args.draws, np.random.default_rng(args.seed))
    report("Letter answers (the default): against survey-sim exact", ways, exact)
    equal_accuracy(ways, exact)
    if args.edsl_python:
        sampled_population = Population(list(population)[: args.sample_personas], id="sampled")
        edsl, served = edsl_on_sglang(
            args.edsl_python,
            args.model,
            questionnaire,
            sampled_population,
            args.draws,
            args.edsl_max_tokens,
            exact.probs[:sampled_count],
        )
        own_exact = Way(
            exact.name,
            exact.tokens * sampled_count / len(requests),
            exact.seconds * sampled_count / len(requests),
            exact.probs[:sampled_count],
        )
        report(
            f"EDSL itself on the first {sampled_count} prompts ({served} requests served; "
            "survey-sim's row: its share of the study's cost)",
            [own_exact, edsl],
            own_exact,
        )

    text_requests, _ = study_requests(questionnaire, population, texts, engine)
    text_exact = survey_sim_exact(engine, questionnaire, population, texts)
    text_ways = [text_exact, first_token(engine, text_requests, "first-token, text answers")]
    report(
        "The options' texts as answers: against survey-sim exact (text answers)",
        text_ways,
        text_exact,
    )
    equal_accuracy(text_ways, text_exact)

    if args.grid_personas:
        grid = persona_grid(args.grid_personas)
        grid_requests, _ = study_requests(questionnaire, grid, letters, engine)
        grid_exact = survey_sim_exact(engine, questionnaire, grid, letters)
        rates = {way.name: way.tokens / way.seconds for way in ways[:3]}
        items = [engine.text.tokenize_request(request) for request in grid_requests]
        re_encoded = sum(
            len(item.shared) * len(item.continuations) + sum(map(len, item.continuations))
            for item in items
        )
        prompts_only = sum(len(item.shared) for item in items)
        grid_ways = [
            grid_exact,
            Way("per-option re-encoding", re_encoded, re_encoded / rates[ways[1].name], [], True),
            Way("first-token", prompts_only, prompts_only / rates[ways[2].name], [], True),
        ]
        report(
            f"{len(grid)} personas x {len(questionnaire.questions)} questions (survey-sim "
            "measured; the others' tokens counted, their seconds at the demo study's tokens/s)",
            grid_ways,
            grid_exact,
        )


if __name__ == "__main__":
    main()
