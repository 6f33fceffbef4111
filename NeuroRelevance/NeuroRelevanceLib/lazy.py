"""Package attributes imported on first use, so importing a package (and ``--help``) stays cheap.

``__getattr__, __dir__ = lazy_exports(__name__, {"name": "submodule", ...}, globals())`` in a
package's ``__init__`` makes ``package.name`` import ``package.submodule`` the first time it is asked
for (PEP 562) and keeps it in the package's namespace afterwards.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, names: dict[str, str], namespace: dict) -> tuple[Callable, Callable]:
    """The ``__getattr__`` and ``__dir__`` of a package whose ``names`` live in its submodules."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__
