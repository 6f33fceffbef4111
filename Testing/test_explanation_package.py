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


def test_one_explain_reached_by_every_documented_path():
    """``NeuroRelevanceLib.explain`` is the dispatcher in ``explanation``; the old documented path
    ``NeuroRelevanceLib.methods.explain`` (docs before the move) is the same function."""
    from NeuroRelevanceLib.explanation import dispatch
    from NeuroRelevanceLib.methods import METHODS, canonical, explain as old

    assert NeuroRelevanceLib.explain is dispatch.explain is old
    assert METHODS is dispatch.METHODS and canonical is dispatch.canonical


def test_every_method_returns_the_one_explanation_type():
    """No subclass per family: LRP, the other methods and the summary all return ``explanation.Explanation``,
    each with its ``parameters`` and a summary line that names the method that ran."""
    import torch

    from NeuroRelevanceLib.explanation.result import Explanation

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv3d(1, 2, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(2 * 4 * 4 * 4, 3)).eval()
    x = torch.randn(1, 1, 4, 4, 4)
    for method in ("lrp", "gradient", "summary"):
        options = {"methods": ["lrp", "gradient"]} if method == "summary" else {}
        result = NeuroRelevanceLib.explain(model, x, method=method, **options)
        assert type(result) is Explanation, method
        assert isinstance(result.parameters, dict)
        assert (result.summary().startswith("LRP") if method == "lrp" else result.summary().startswith(method))
    assert not hasattr(importlib.import_module("NeuroRelevanceLib.methods.common"), "MethodExplanation")
