"""The one example schema every task, loader, trainer and notebook uses.

A row is a plain ``dict`` (so it round-trips through ``datasets.Dataset``) with these keys:

``id``          unique, stable string, e.g. ``"arith-2-3fa9c1d2"``
``question``    the problem text on its own, without any format instruction
``prompt``      what the policy sees, TRL-ready: a plain string, or a list of chat messages
                ``[{"role": "user", "content": ...}]`` (see :mod:`uec_repro.tasks.prompts`)
``answer``      the reference final answer as a string, written the way the source writes it
``source``      where the row comes from: ``"arith"``, ``"geometry"``, ``"geometry3k"``, ``"math12k"`` ...
``difficulty``  an integer tier, 1 = easiest; ``0`` where the source has no difficulty
``image``       a PIL image; present only in rows of visual tasks (Geometry3K). TRL treats any
                ``image`` column as a multimodal batch, so text tasks must not have one.
``solution``    a worked solution when the source has one (``""`` otherwise)
``meta``        a JSON string with generator parameters or source fields (for re-derivation / analysis)
"""

from __future__ import annotations

from typing import Any

from ..validation import ParameterError

FIELDS = ("id", "question", "prompt", "answer", "source", "difficulty", "solution", "meta")
OPTIONAL_FIELDS = ("image",)
REQUIRED_TEXT_FIELDS = ("id", "question", "answer", "source")


class BadExampleError(ParameterError):
    """A dataset row does not follow the schema (missing answer, empty question ...)."""


def make_example(
    *,
    id: str,
    question: str,
    answer: str,
    source: str,
    difficulty: int = 0,
    prompt: str | list[dict[str, Any]] | None = None,
    image: Any = None,
    solution: str = "",
    meta: str = "{}",
) -> dict[str, Any]:
    """Build one schema row and check it; ``prompt`` defaults to the bare question."""
    row = {
        "id": id,
        "question": question,
        "prompt": question if prompt is None else prompt,
        "answer": answer,
        "source": source,
        "difficulty": int(difficulty),
        "solution": solution,
        "meta": meta,
    }
    if image is not None:
        row["image"] = image
    validate_example(row)
    return row


def validate_example(row: dict[str, Any]) -> None:
    """Raise :class:`BadExampleError` naming the row id and the field when ``row`` is malformed."""
    row_id = row.get("id", "<no id>")
    for field in FIELDS:
        if field not in row:
            raise BadExampleError(
                f"example {row_id!r}: missing field {field!r} (schema fields: {list(FIELDS)})"
            )
    for field in REQUIRED_TEXT_FIELDS:
        value = row[field]
        if not isinstance(value, str) or not value.strip():
            raise BadExampleError(
                f"example {row_id!r}: field {field!r} must be a non-empty string, got {value!r}"
            )
