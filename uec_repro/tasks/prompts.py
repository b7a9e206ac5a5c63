"""The paper's prompt format, applied through the tokenizer's chat template when it has one.

The authors' code appends a fixed format instruction (``FORMAT_PROMPT`` in their example scripts,
see docs/paper.md#evaluation-protocol) to the question after one space, then applies the model's chat template
with a generation prompt. TRL applies the chat template itself when a prompt is a list of messages, so we
return messages for chat models and a plain string otherwise.
"""

from __future__ import annotations

from typing import Any

FORMAT_PROMPT = (
    "You FIRST think about the reasoning process as an internal monologue and then provide the final answer. "
    "The reasoning process MUST BE enclosed within <think> </think> tags. "
    "The final answer MUST BE put in \\boxed{}."
)


def with_instruction(question: str) -> str:
    """The user turn exactly as the authors build it: question, one space, format instruction."""
    return f"{question} {FORMAT_PROMPT}"


def build_prompt(question: str, tokenizer: Any = None, *, image: bool = False) -> str | list[dict[str, Any]]:
    """TRL-ready prompt for ``question``.

    With a tokenizer that has a chat template (or ``tokenizer=None``, the conversational default) the
    result is ``[{"role": "user", "content": ...}]``; for a visual task the content is a list with an
    image item first, as multimodal chat templates expect. A tokenizer without a chat template gets
    the plain string.
    """
    text = with_instruction(question)
    if tokenizer is not None and not getattr(tokenizer, "chat_template", None):
        return text
    if image:
        return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
    return [{"role": "user", "content": text}]
