"""The shared explanation core is a package of its own whose name does not shadow ``NeuroRelevanceLib.explain``."""
import importlib
import pkgutil

import NeuroRelevanceLib


def test_explain_stays_the_function_after_every_core_module_is_imported():
    import NeuroRelevanceLib.explanation as core

    for info in pkgutil.iter_modules(core.__path__):
        importlib.import_module(f"{core.__name__}.{info.name}")
    importlib.import_module("NeuroRelevanceLib.methods")
    importlib.import_module("NeuroRelevanceLib.engine")
    assert callable(NeuroRelevanceLib.explain)
    from NeuroRelevanceLib import explain

    assert callable(explain) and explain.__module__.startswith("NeuroRelevanceLib.")
