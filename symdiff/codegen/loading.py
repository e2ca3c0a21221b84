"""Turn generated source into a module object, importing nothing but the standard library (so a
Dask worker that runs a generated module needs NumPy only, not the code generator and SymPy)."""

from __future__ import annotations

import builtins
import linecache
import types


def load_generated(source: str, name: str) -> types.ModuleType:
    """A module object running ``source``, which must be code symdiff generated itself.

    ``__source__`` holds the text; tracebacks show its lines (registered with linecache).
    """
    filename = f"<symdiff generated module {name}>"
    module = types.ModuleType(name)
    module.__file__ = filename
    module.__dict__["__source__"] = source
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    code = builtins.compile(source, filename, "exec")
    exec(code, module.__dict__)  # noqa: S102 - generated code only: every user name was checked
    return module
