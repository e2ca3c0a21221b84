"""The one Jinja environment every generated module is rendered with.

Templates are package data (``symdiff/codegen/templates``) loaded by ``jinja2.PackageLoader``, so
they are found wherever symdiff is installed; a user's ``--templates DIR`` comes first in a
``ChoiceLoader`` and overrides any template by name (the rest still come from the package).
A user's template is read through ``symdiff.inputs``: a regular UTF-8 file of at most 1 MiB
(a FIFO, a device or a larger file is refused with an error naming it).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path

import jinja2
import jinja2.loaders

from ..errors import InputError
from ..inputs import TEXT_LIMIT, read_text_file


class UserTemplateLoader(jinja2.BaseLoader):
    """Templates from a user's folder, each read with ``read_text_file`` (bounded, UTF-8, regular
    files only); a name that is not there is ``TemplateNotFound``, so the package's is used."""

    def __init__(self, folder: str, limit: int = TEXT_LIMIT) -> None:
        self.folder = folder
        self.limit = limit

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        pieces = jinja2.loaders.split_template_path(template)  # refuses '..'
        path = os.path.join(self.folder, *pieces)
        if not os.path.exists(path):
            raise jinja2.TemplateNotFound(template)
        text = read_text_file(path, self.limit, "template")
        mtime = os.path.getmtime(path)

        def uptodate() -> bool:
            try:
                return os.path.getmtime(path) == mtime
            except OSError:
                return False

        return text, path, uptodate


def _loader(override: str | None) -> jinja2.BaseLoader:
    package = jinja2.PackageLoader("symdiff.codegen", "templates")
    if override is None:
        return package
    return jinja2.ChoiceLoader([UserTemplateLoader(override), package])


@functools.lru_cache(maxsize=8)
def _environment(override: str | None) -> jinja2.Environment:
    return jinja2.Environment(
        loader=_loader(override),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def environment(templates: str | Path | None = None) -> jinja2.Environment:
    """The strict environment: ``templates`` (a directory) first, then the package's."""
    if templates is None:
        return _environment(None)
    path = Path(templates)
    if not path.is_dir():
        raise InputError(f"--templates: '{path}' is not a directory")
    return _environment.__wrapped__(str(path.resolve()))  # a user's files may change: no cache


def render(name: str, context: dict, templates: str | Path | None = None) -> str:
    """Render template ``name``; a missing template or value is an InputError naming it."""
    try:
        return environment(templates).get_template(name).render(**context)
    except jinja2.TemplateNotFound as exc:
        raise InputError(
            f"template {exc.name} not found (templates: {templates or 'package'})"
        ) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"template {name} is not UTF-8 text: {exc.reason}") from None
    except jinja2.TemplateError as exc:
        raise InputError(f"template error in {name}: {exc}") from None


def template_source(name: str) -> str:
    """The text of a shipped template (for code that includes plain-Python helpers)."""
    loader = environment().loader
    assert loader is not None
    return loader.get_source(environment(), name)[0]


def shipped_template_dir() -> Path:
    """The directory the package's templates are loaded from (for tests and docs)."""
    return Path(__file__).resolve().parent / "templates"
