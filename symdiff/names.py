"""Names a user types into a registry (optimizers, schedules, functions, formats): matched
without regard to case, and a typo answered with a did-you-mean.

One helper for every registry, so ``--optimizer SGD``, ``--format JSON`` and ``Sin(x)`` all
work, and ``sine(x)`` says ``did you mean 'sin'?``. Standard library only (the CLI imports it
before anything heavy).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

from .errors import InputError

T = TypeVar("T")

#: how alike a typo and a name must be (difflib's ratio 2*matches/total) to be suggested
CUTOFF = 0.6


def canonical(name: str, choices: Iterable[str]) -> str | None:
    """The choice that ``name`` means: itself, else the one choice equal to it up to case."""
    options = list(choices)
    if name in options:
        return name
    folded = [choice for choice in options if choice.casefold() == name.casefold()]
    return folded[0] if len(folded) == 1 else None


def suggestions(name: str, choices: Iterable[str], limit: int = 3) -> list[str]:
    """The choices most like ``name`` (difflib ratio >= CUTOFF, case ignored): those tied for
    the best ratio, at most ``limit``."""
    import difflib  # the error path only: the CLI starts without it

    by_folded: dict[str, str] = {}
    for choice in sorted(choices):
        by_folded.setdefault(choice.casefold(), choice)
    folded = name.casefold()
    close = difflib.get_close_matches(folded, by_folded, n=limit, cutoff=CUTOFF)
    ratios = [difflib.SequenceMatcher(None, folded, match).ratio() for match in close]
    best = max(ratios, default=0.0)
    return [by_folded[match] for match, ratio in zip(close, ratios, strict=True) if ratio == best]


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``"did you mean 'sin'?"`` (or 'a' or 'b'), or ``""`` when nothing is close."""
    close = suggestions(name, choices)
    if not close:
        return ""
    return "did you mean " + " or ".join(f"'{choice}'" for choice in close) + "?"


def unknown(kind: str, name: str, choices: Iterable[str]) -> str:
    """``unknown optimizer 'adma' (did you mean 'adam'?)``, else the list to choose from."""
    options = sorted(choices)
    hint = did_you_mean(name, options) or f"choose from: {', '.join(options)}"
    return f"unknown {kind} '{name}' ({hint})"


def lookup(registry: Mapping[str, T], name: str, kind: str) -> T:
    """``registry[name]``, case ignored; an unknown name is an InputError with a did-you-mean."""
    key = canonical(name, registry)
    if key is None:
        raise InputError(unknown(kind, name, registry))
    return registry[key]
