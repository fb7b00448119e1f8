import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from survey_sim import (
    ChatFormat,
    Persona,
    PlainFormat,
    ScoringError,
    SpectrumFormat,
    TransformersEngine,
    XmlFormat,
)
from survey_sim.asking import get_format
from survey_sim.asking.formats import FORMATS, MARKUPS, PromptContext, is_prefix_free
from survey_sim.asking.kinds import ask, choice_request
from survey_sim.population import default_description
from survey_sim.questionnaire import ChoiceQuestion

DESCRIPTION = "You are a 40-year-old nurse."


def numbered_question(count: int) -> ChoiceQuestion:
    return ChoiceQuestion(
        id="scale",
        kind="ordinal",
        text="How interested are you in politics?",
        label_style="number",
        options=[{"code": str(i), "text": f"Level {i}"} for i in range(1, count + 1)],
    )


def test_question_body_lists_options_and_instruction(gss):
    natfare = gss.question("natfare")
    body = ask(natfare, PlainFormat()).sample_prompt(
        PromptContext("", AnswerFirstTemplate(), instructions="Please answer honestly.")
    )
    assert body.startswith("\n\nPlease answer honestly.\n\nWe are faced with many problems")
    assert "A. Too little\nB. About right\nC. Too much" in body
    assert body.endswith("Answer with the letter of one option only.\n\nAnswer:")
    text_body = ask(natfare, PlainFormat(answer="text")).sample_prompt(
        PromptContext("", AnswerFirstTemplate())
    )
    assert "- About right" in text_body and "exactly as written" in text_body


def test_chat_format_uses_the_models_template(tiny_engine, gss):
    request = choice_request(
        gss.question("natfare"), ChatFormat(), description=DESCRIPTION, chat=tiny_engine
    )
    assert request.prefix.startswith(
        f"<|im_start|>system\n{DESCRIPTION}<|im_end|>\n<|im_start|>user\n"
    )
    assert request.prefix.endswith("<|im_start|>assistant\n")
    assert request.continuations == ("A", "B", "C")


def test_spectrum_format_roles(tiny_engine, gss):
    request = choice_request(
        gss.question("natsoc"),
        SpectrumFormat(answer="text"),
        description=DESCRIPTION,
        chat=tiny_engine,
    )
    assert request.prefix.startswith(f"<|im_start|>description\n{DESCRIPTION}<|im_end|>\n")
    assert "<|im_start|>input\n" in request.prefix
    assert request.prefix.endswith("<|im_start|>output\n")
    assert request.continuations == ("Too little", "About right", "Too much")


def test_plain_format(tiny_engine, gss):
    request = choice_request(
        gss.question("natsoc"), PlainFormat(), description=DESCRIPTION, chat=tiny_engine
    )
    assert request.prefix.startswith(DESCRIPTION) and request.prefix.endswith("\n\nAnswer:")
    assert request.continuations == (" A", " B", " C")


def test_termination_is_automatic_when_answers_are_not_prefix_free(tiny_engine):
    short, long = numbered_question(3), numbered_question(10)
    assert is_prefix_free(["1", "2", "3"]) and not is_prefix_free(["1", "10"])
    chat = ChatFormat()
    assert choice_request(short, chat, description=DESCRIPTION, chat=tiny_engine).continuations == (
        "1",
        "2",
        "3",
    )
    terminated = choice_request(long, chat, description=DESCRIPTION, chat=tiny_engine)
    assert terminated.continuations[0] == "1<|im_end|>"
    assert terminated.continuations[9] == "10<|im_end|>"
    plain = choice_request(long, PlainFormat(), description=DESCRIPTION, chat=tiny_engine)
    assert plain.continuations[0] == " 1\n"
    forced = choice_request(
        short, SpectrumFormat(terminated=True), description=DESCRIPTION, chat=tiny_engine
    )
    assert forced.continuations[0] == "1<|im_end|>"


def test_format_names_record_the_variant():
    assert get_format("chat").name == "chat"
    assert get_format("spectrum", answer="text").name == "spectrum:text"
    assert get_format("plain", terminated=False).name == "plain:open"
    assert get_format("chat", terminated=True).name == "chat:terminated"
    with pytest.raises(ValueError, match="unknown prompt format 'json'"):
        get_format("json")


@given(
    base=st.sampled_from(sorted(FORMATS)),
    answer=st.sampled_from(["label", "text"]),
    terminated=st.sampled_from(["auto", True, False]),
    markup=st.sampled_from(["auto", *MARKUPS]),
)
def test_every_recorded_format_name_reads_back_as_its_format(base, answer, terminated, markup):
    options = {"markup": markup} if base == "spectrum" else {}
    made = FORMATS[base](answer=answer, terminated=terminated, **options)
    assert get_format(made.name) == made
    assert get_format(made.name).name == made.name


def test_format_name_options_refuse_contradictions_and_unknown_words():
    assert get_format("chat:text", answer="text") == ChatFormat(answer="text")
    assert get_format("plain:open", answer="text") == PlainFormat(answer="text", terminated=False)
    with pytest.raises(ValueError, match="sets terminated to False, but terminated=True"):
        get_format("chat:open", terminated=True)
    with pytest.raises(ValueError, match="unknown option 'gemma' in prompt format 'chat:gemma'"):
        get_format("chat:gemma")


def test_spectrum_reads_the_markup_once_per_model(tiny_engine):
    class CountingRenderer:
        calls = 0

        def render_chat(self, messages, *, add_generation_prompt):
            CountingRenderer.calls += 1
            return tiny_engine.render_chat(messages, add_generation_prompt=add_generation_prompt)

    renderer, spectrum = CountingRenderer(), SpectrumFormat()
    first = spectrum.prompt("Q1", PromptContext(DESCRIPTION, renderer))
    spectrum.prompt("Q2", PromptContext(DESCRIPTION, renderer))
    assert CountingRenderer.calls == 1
    assert first == SpectrumFormat(markup="chatml").prompt(
        "Q1", PromptContext(DESCRIPTION, renderer)
    )
    spectrum.prompt("Q1", PromptContext(DESCRIPTION, CountingRenderer()))
    assert CountingRenderer.calls == 2  # another model: read again


class AnswerFirstTemplate:
    """A template whose assistant turn does not continue its generation prompt."""

    def render_chat(self, messages, *, add_generation_prompt):
        text = "".join(f"[{m['role']}] {m['content']}\n" for m in messages)
        return text + ("[assistant]" if add_generation_prompt else "")


def test_chat_format_rejects_inconsistent_templates(gss):
    with pytest.raises(ScoringError, match="use format 'spectrum' or 'plain'"):
        choice_request(
            gss.question("natsoc"),
            ChatFormat(),
            description=DESCRIPTION,
            chat=AnswerFirstTemplate(),
        )


GEMMA_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<start_of_turn>"
    "{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n{{ m['content'] | trim }}"
    "<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>"
    "\n\n{{ m['content'] | trim }}<|eot_id|>{% endfor %}{% if add_generation_prompt %}"
    "<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)


def engine_with_template(engine: TransformersEngine, template: str | None) -> TransformersEngine:
    tokenizer = copy.deepcopy(engine.tokenizer)
    tokenizer.chat_template = template
    return TransformersEngine(engine.model, tokenizer, model_id=f"{engine.model_id}+template")


@pytest.mark.parametrize(
    ("template", "description_turn", "output_opening", "end"),
    [
        (None, "<|im_start|>description\n{}<|im_end|>\n", "<|im_start|>output\n", "<|im_end|>"),
        (
            GEMMA_TEMPLATE,
            "<start_of_turn>description\n{}<end_of_turn>\n",
            "<start_of_turn>output\n",
            "<end_of_turn>",
        ),
        (
            LLAMA3_TEMPLATE,
            "<|start_header_id|>description<|end_header_id|>\n\n{}<|eot_id|>",
            "<|start_header_id|>output<|end_header_id|>\n\n",
            "<|eot_id|>",
        ),
    ],
    ids=["qwen-chatml", "gemma", "llama3"],
)
def test_spectrum_roles_in_each_familys_markup(
    tiny_engine, template, description_turn, output_opening, end
):
    engine = tiny_engine if template is None else engine_with_template(tiny_engine, template)
    request = choice_request(
        numbered_question(10), SpectrumFormat(), description=DESCRIPTION, chat=engine
    )
    assert request.prefix.startswith(description_turn.format(DESCRIPTION))
    assert request.prefix.endswith(output_opening)
    assert request.continuations[0] == f"1{end}"  # "1" begins "10": the end marker tells them apart
    # Scoring works in every markup, and the sequences scored are exactly prefix + answer.
    result = engine.score([request])[0]
    assert len(result.logprobs) == 10


def test_spectrum_markup_unknown_family_is_an_error_or_a_choice(tiny_engine, gss):
    plain_engine = engine_with_template(
        tiny_engine, "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    )
    with pytest.raises(ScoringError, match=r"cannot tell which turn markup .*\(markup='chatml'\)"):
        choice_request(
            gss.question("natsoc"), SpectrumFormat(), description=DESCRIPTION, chat=plain_engine
        )
    no_template = engine_with_template(tiny_engine, None)
    chosen = SpectrumFormat(markup="gemma")
    assert chosen.name == "spectrum:gemma"
    request = choice_request(
        gss.question("natsoc"), chosen, description=DESCRIPTION, chat=no_template
    )
    assert request.prefix.startswith("<start_of_turn>description\n")
    assert get_format("spectrum:llama3", answer="text").name == "spectrum:text:llama3"
    with pytest.raises(ValueError, match="unknown markup 'mistral'"):
        get_format("spectrum:mistral")


def test_xml_format_lists_attributes_in_tags(tiny_engine, gss):
    persona = Persona(
        id="p1",
        description=default_description({"age": 52, "home_state": "Ohio"}),
        attributes={"age": 52, "home_state": "Ohio"},
    )
    xml = XmlFormat()
    assert xml.describe(persona) == "- Age: 52\n- Home state: Ohio"
    told = persona.model_copy(update={"description": "A retired teacher who gardens."})
    assert xml.describe(told).endswith("\n- Profile: A retired teacher who gardens.")
    request = choice_request(
        gss.question("natsoc"), xml, description=xml.describe(persona), chat=tiny_engine
    )
    assert request.prefix.startswith(
        "<|im_start|>user\n<RespondentDescription>\n- Age: 52\n- Home state: Ohio\n"
        "</RespondentDescription>\n<writingInstructions>\n"
    )
    assert "</writingInstructions>\n<question>\n" in request.prefix
    assert request.prefix.endswith("</question><|im_end|>\n<|im_start|>assistant\n")
    assert request.continuations == ("A", "B", "C")
