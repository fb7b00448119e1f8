import pytest

from survey_sim import ChatFormat, PlainFormat, ScoringError, SpectrumFormat
from survey_sim.asking import get_format
from survey_sim.asking.formats import is_prefix_free
from survey_sim.asking.kinds import ask, choice_request
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
        description="", instructions="Please answer honestly.", chat=AnswerFirstTemplate()
    )
    assert body.startswith("\n\nPlease answer honestly.\n\nWe are faced with many problems")
    assert "A. Too little\nB. About right\nC. Too much" in body
    assert body.endswith("Answer with the letter of one option only.\n\nAnswer:")
    text_body = ask(natfare, PlainFormat(answer="text")).sample_prompt(
        description="", instructions=None, chat=AnswerFirstTemplate()
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
