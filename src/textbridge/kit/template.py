"""Message templates: ``Hello {first_name|there}``, rendered once per recipient.

``{name}`` is replaced by the recipient's value for ``name`` (empty when it has none),
``{name|text}`` by ``text`` when it has none, and ``{{`` / ``}}`` stand for literal braces.
Anything else in braces (``{"a": 1}``, ``{ x }``) is left as it is.

Hand-written: the template engines (Jinja, string.Template, str.format) either execute
expressions or fail on a missing value; this is a dozen lines with neither.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import regex

# An escaped brace, or a placeholder: a name, then optionally "|" and a fallback.
_TOKEN = regex.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]{0,63})(?:\|([^{}]{0,200}))?\}")


@dataclass(frozen=True, slots=True)
class Placeholder:
    name: str
    fallback: str | None


@dataclass(frozen=True, slots=True)
class Template:
    parts: tuple[str | Placeholder, ...]

    @property
    def placeholders(self) -> list[Placeholder]:
        return [part for part in self.parts if isinstance(part, Placeholder)]

    def render(self, values: Mapping[str, str]) -> str:
        return "".join(
            part if isinstance(part, str) else (values.get(part.name) or part.fallback or "")
            for part in self.parts
        )

    def unfillable(self, recipients: Iterable[Mapping[str, str]]) -> list[str]:
        """Placeholders without a fallback that no recipient has a value for: almost always a
        misspelt name."""
        missing = {part.name for part in self.placeholders if part.fallback is None}
        for values in recipients:
            missing = {name for name in missing if not values.get(name)}
            if not missing:
                break
        return sorted(missing)


def has_placeholders(text: str) -> bool:
    """Whether ``text`` needs rendering at all (the common case is a plain text: no)."""
    return "{" in text and _TOKEN.search(text) is not None


def parse(text: str) -> Template:
    parts: list[str | Placeholder] = []
    literal = ""
    position = 0
    for match in _TOKEN.finditer(text):
        literal += text[position : match.start()]
        position = match.end()
        if match.group(1) is None:  # an escaped brace
            literal += match.group(0)[0]
            continue
        if literal:
            parts.append(literal)
            literal = ""
        parts.append(Placeholder(match.group(1), match.group(2)))
    literal += text[position:]
    if literal:
        parts.append(literal)
    return Template(tuple(parts))
