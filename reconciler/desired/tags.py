"""Declared tags: a contact's ``tags:`` list read into the set the diff compares.

Each tag is trimmed (the account stores it trimmed) and put in Unicode NFC like every other
declared text. More than ``MAX_TAGS`` tags, a tag that trims to nothing, or a tag written
twice (compared exactly, after trimming) is a problem of the file: sent as written, the
account would refuse the contact, keep fewer tags than declared, or keep one of the two, and
every plan would show the same change again."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import NamedTuple

from reconciler.desired.unicode_form import composed

# Heymarket's documented limit of tags on one contact.
MAX_TAGS = 5


class TagProblem(NamedTuple):
    """What is wrong with a ``tags:`` list; ``item`` is the 0-based index of the tag at
    fault, or ``None`` when the list as a whole is."""

    item: int | None
    message: str


def read_tags(written: Sequence[str] | None) -> tuple[str, ...] | list[TagProblem]:
    """The tags as declared (trimmed, composed, in the order written), ``()`` for ``null`` or
    ``[]`` (managed and cleared), or every problem of the list."""
    if written is None:
        return ()
    problems: list[TagProblem] = []
    if len(written) > MAX_TAGS:
        problems.append(
            TagProblem(
                None,
                f'"tags" lists {len(written)} tags; a contact has at most {MAX_TAGS} '
                "(Heymarket's limit): remove some",
            )
        )
    tags: list[str] = []
    first_index: dict[str, int] = {}
    for index, raw in enumerate(written):
        tag = str(composed(raw.strip()))
        if not tag:
            problems.append(
                TagProblem(
                    index, f'item {index + 1} of "tags" is blank; write a tag or remove the item'
                )
            )
            continue
        earlier = first_index.setdefault(tag, index)
        if earlier != index:
            problems.append(
                TagProblem(
                    index,
                    f"tag {json.dumps(tag, ensure_ascii=False)} is written twice in "
                    f'"tags" (items {earlier + 1} and '
                    f"{index + 1}, compared after trimming); remove one",
                )
            )
            continue
        tags.append(tag)
    return problems if problems else tuple(tags)
