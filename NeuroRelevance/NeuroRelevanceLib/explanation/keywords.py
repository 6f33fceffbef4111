"""The keyword options of each explanation method, and one clear refusal of any other.

A misspelled keyword (``epsilonn=1.0``) used to travel through a whole run and fail inside the
method as a raw ``TypeError``. :func:`check_options` refuses it up front, naming the keyword, the
closest known one ("did you mean 'epsilon'?") and every option the method has. The options are
read from the methods' own signatures (the LRP engine's ``explain`` and each function of
:data:`dispatch.FUNCTIONS`), so they cannot drift from what the methods accept.
"""
from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..errors import InputError

#: what a run sets itself (model, input, target, filter, device): never a user keyword for a method
RUN_OWN = ("model", "x", "method", "preset", "target", "filter", "filter_range", "filter_placement", "device")
#: methods that run LRP, and so take its preset, α and per-layer filter placement
LRP_METHODS = ("lrp", "summary")
#: options of ``method="summary"`` (see ``dispatch._summary``)
SUMMARY_OPTIONS = ("methods", "weights", "normalisation", "absolute", "method_options", "mask", "dtype")


def method_options(method: str) -> tuple[str, ...]:
    """The keyword options ``method`` takes beyond those a run sets itself (sorted)."""
    from .dispatch import FUNCTIONS, canonical

    name = canonical(method)
    if name == "summary":
        return tuple(sorted(SUMMARY_OPTIONS))
    if name == "lrp":
        from ..engine import explain as function
    else:
        function = FUNCTIONS[name]
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    names = {p.name for p in inspect.signature(function).parameters.values() if p.kind in kinds}
    if name != "lrp":
        names.add("filter_per_channel")  # applied by dispatch to every method's map
    return tuple(sorted(names - set(RUN_OWN)))


def check_options(method: str, options: Mapping[str, Any], settings: Iterable[str] = (),
                  where: str = "") -> None:
    """Refuse keywords ``method`` does not take, before any work, with the closest known name.

    ``settings``: the other keywords the caller accepts (e.g. a run's ``threshold``), offered as
    suggestions too; ``where`` names the call in the message (e.g. "RelevanceLogic.run").
    """
    from .dispatch import METHODS, canonical

    name = canonical(method)
    known = method_options(name)
    unknown = sorted(set(options) - set(known))
    if not unknown:
        return
    settings = tuple(settings)
    key = unknown[0]
    others = [m for m in METHODS if m != name and key in method_options(m)]
    if others:
        hint = f"'{key}' is an option of {', '.join(others)}, not of {name}"
    else:
        close = difflib.get_close_matches(key, list(known) + list(settings), n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'?" if close else "no option has a similar name"
    listed = ", ".join(known) or "none"
    also = f"; the run's own settings are {', '.join(settings)}" if settings else ""
    call = f"{where}: " if where else ""
    more = f" (also unknown: {', '.join(map(repr, unknown[1:]))})" if len(unknown) > 1 else ""
    raise InputError(f"{call}unknown keyword {key!r} for method {name!r}{more}: {hint}. The options of {name} "
                     f"are {listed}{also}. Nothing was run.")


def check_lrp_options(methods: Sequence[str], given: Mapping[str, Any]) -> None:
    """Refuse LRP-only options when none of ``methods`` runs LRP (they would be ignored silently).

    given: option keyword ("preset") -> its value; None means not given. The refusal (``vocabulary.OptionError``)
    names the option as the library spells it; the command line shows its flag.
    """
    from ..vocabulary import OptionError
    from .dispatch import canonical

    names = [canonical(m) for m in methods]
    if any(name in LRP_METHODS for name in names):
        return
    for option, value in given.items():
        if value is not None:
            which = f"method is {names[0]}" if len(names) == 1 else f"methods are {', '.join(names)}"
            raise OptionError((option, value), f" is an LRP option, but the {which}, which does not use it; leave "
                              "it out, or choose the lrp method.")
