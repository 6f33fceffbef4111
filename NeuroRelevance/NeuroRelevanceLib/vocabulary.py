"""The one declaration of every run option: name, type, range, choices, defaults and help text.

The Slicer module (parameter node, combo items, spin-box ranges), the web page (start values, widget
ranges, the checks of what the browser sends), the ``explain`` command line (flags) and the console
defaults (``jobs.Settings``) are derived from :data:`OPTIONS`; ``Testing/test_settings_vocabulary.py``
checks that they all agree. This module imports neither torch nor Qt nor pandas; the preset list is read
live from the engine's registry (``engine/presets.py``), the region-size defaults from ``regions``
when asked.

Ranges of the LRP rule parameters (one range everywhere, the panel's spin boxes included):

- ε ∈ [0, 1000]: ε is added to a layer's pre-activations z, so it is in z's units; networks fed
  unnormalised intensities have |z| in the hundreds or thousands, where an ε capped at 10 would have
  no visible effect (ε ≫ |z| turns every ε layer into a near-constant spread of relevance, so
  larger values add nothing).
- γ ∈ [0, 1000]: γ weighs the positive weights (z + γ z⁺); from γ ≈ 100 on the rule equals z⁺ within
  1 %, so the cap only stops typing errors.
- α ∈ [1, 10]: the αβ rule with β = α − 1; the papers use α ∈ {1, 2}; at α = 10 it already subtracts
  nine times the negative part from ten times the positive one.

"No filter" is ``None`` in the library and "none" in the widgets (:data:`NO_FILTER`);
:func:`library_filter` maps either to ``None``. The card field ``input.normalization.type`` (what the
model expects of its input) has its choices in ``models.schema.INPUT_NORMALIZATIONS``; the map
normalisation of ``method="summary"`` (``methods.SUMMARY_NORMALISATIONS``) is a different thing.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import InputError

#: the widgets' word for "no filter" / "no atlas" and for "explain the predicted class"
NO_FILTER = "none"
NO_ATLAS = "none"
PREDICTED = "predicted"


def _presets() -> tuple:
    from .engine import presets

    return tuple(presets.PRESETS)


def _rule_default(name: str) -> Callable[[], float]:
    def read() -> float:
        from .engine.presets import RuleParams

        return getattr(RuleParams(), name)
    return read


def _region_default(name: str) -> Callable[[], float]:
    def read() -> float:
        from .regions import statistics

        return getattr(statistics, name)
    return read


def _threshold() -> float:
    from .windowing import DEFAULT_THRESHOLD

    return DEFAULT_THRESHOLD


@dataclass(frozen=True)
class Option:
    """One run option. ``default``: the library's (console, command line) value; ``shown``: what a
    panel starts from where it differs (a widget cannot show ``None``); ``web``: the web page's start
    value where it deliberately differs from the Slicer panel's. A callable is read when asked."""

    name: str
    value_type: type
    help: str
    default: Any = None
    shown: Any = None
    web: Any = None
    low: float | None = None
    high: float | None = None
    choices: Any = None
    flag: str | None = None
    slicer: str | None = None
    label: str = ""

    def _read(self, value: Any) -> Any:
        return value() if callable(value) else value

    @property
    def library_default(self) -> Any:
        """The default of the console (``jobs.Settings``) and the command line."""
        return self._read(self.default)

    @property
    def panel_default(self) -> Any:
        """The Slicer panel's start value."""
        return self._read(self.shown) if self.shown is not None else self.library_default

    @property
    def web_default(self) -> Any:
        """The web page's start value."""
        return self._read(self.web) if self.web is not None else self.panel_default

    @property
    def bounds(self) -> tuple[float, float]:
        """(low, high) of a number option."""
        if self.low is None or self.high is None:
            raise TypeError(f"option {self.name!r} has no range")
        return (float(self.low), float(self.high))

    @property
    def items(self) -> list:
        """The choices a widget offers (read live, e.g. the preset registry)."""
        return list(self._read(self.choices))


def _options(*options: Option) -> dict[str, Option]:
    return {o.name: o for o in options}


#: every run option, by the keyword name of ``RelevanceLogic.prepare``/``run`` (and the web page's state)
OPTIONS: dict[str, Option] = _options(
    Option("method", str, "explanation method: lrp uses the preset and the rule parameters; the other methods "
           "take neither (docs/methods.md)", "lrp",
           choices=("lrp", "gradient", "gradient_x_input", "smoothgrad", "integrated_gradients",
                    "guided_backprop", "gradcam", "gradcam++", "guided_gradcam"),
           flag="--method", slicer="method", label="Method"),
    Option("preset", str, "composite of LRP rules (default: the model card's recommended preset)", None,
           shown="epsilon-plus", choices=_presets, flag="--preset", slicer="preset", label="LRP rule preset"),
    Option("epsilon", float, "ε of the LRP-ε rules (stabiliser, in pre-activation units)",
           _rule_default("epsilon"), low=0.0, high=1000.0, flag="--epsilon", slicer="epsilon", label="ε"),
    Option("gamma", float, "γ of the LRP-γ rules", _rule_default("gamma"), low=0.0, high=1000.0,
           flag="--gamma", slicer="gamma", label="γ"),
    Option("alpha", float, "α of the αβ presets, β = α − 1 (not the filter range's α1, α2); default: the preset's "
           "own α, another value runs AlphaBeta(α, α − 1)", None, shown=1.0, low=1.0, high=10.0, flag="--alpha",
           slicer="alpha", label="αβ rule α"),
    Option("target", str, "class name or index to explain (default: the predicted class; another class gives an "
           "anti-heatmap)", None, shown=PREDICTED, flag="--target", slicer="target", label="Target"),
    Option("filter", str, "relevance filter (Tjoa et al.): pass keeps |R| inside the range, clamp clips into it",
           None, shown=NO_FILTER, choices=(NO_FILTER, "pass", "clamp"), flag="--filter",
           slicer="filterType", label="Filter type"),
    Option("filter_range", float, "α1 α2 of the filter, fractions of max |R| (not the αβ rule's α)", (0.0, 1.0),
           low=0.0, high=1.0,
           flag="--filter-range", label="Filter range"),
    Option("filter_placement", str, "filter once at the input, or after every layer during propagation (LRP only)",
           "input", choices=("input", "every-layer"), flag="--filter-placement", slicer="filterPlacement",
           label="Filter placement"),
    Option("atlas", str, "atlas of the region table: a bundled atlas name or a label-map file", None,
           shown=NO_ATLAS, flag="--atlas", slicer="atlasName", label="Atlas"),
    Option("min_overlap", float, "share of Σ|R| that must lie inside the atlas", 0.5, low=0.0, high=1.0,
           flag="--min-overlap", label="Minimum overlap"),
    Option("min_region_voxels", float, "smaller regions are listed but not ranked",
           _region_default("DEFAULT_MIN_REGION_VOXELS"), low=0.0, high=float("inf"), flag="--min-region-voxels"),
    Option("min_region_mm3", float, "smaller regions (mm³) are listed but not ranked",
           _region_default("DEFAULT_MIN_REGION_MM3"), low=0.0, high=float("inf"), flag="--min-region-mm3"),
    # the web page starts with a clearer map: weak relevance (under 30 % of the window) left out, so the
    # anatomy stays readable (at 5 % and opacity 0.6 a pale haze covered a fifth of the demo brain; docs/web.md)
    Option("opacity", float, "foreground opacity of the heatmap", 0.5, web=0.8, low=0.0, high=1.0,
           slicer="opacity", label="Opacity"),
    Option("threshold", float, "|R| under this fraction of the display window is not drawn", _threshold,
           web=0.3, low=0.0, high=0.99, slicer="threshold", label="Threshold"),
    Option("positive_only", bool, "show positive relevance only, with a red-yellow colour table instead of the "
           "blue-red diverging one", False, slicer="positiveOnly",
           label="Positive relevance only"),
    Option("device", str, "where to compute: auto (CUDA when present), cpu or cuda", "auto",
           choices=("auto", "cuda", "cpu"),
           flag="--device", slicer="device", label="Device"),
    Option("gain_on", str, "the region gain against a reference group divides sums of positive relevance (R+, "
           "Böhle et al.) or of |R|", "positive", choices=("positive", "absolute"), flag="--gain-on"),
)


def option(name: str) -> Option:
    """The option called ``name`` (KeyError names the known ones)."""
    try:
        return OPTIONS[name]
    except KeyError:
        raise KeyError(f"no run option {name!r}; known: {', '.join(OPTIONS)}") from None


def shown(name: str) -> Any:
    """The Slicer panel's start value of option ``name``."""
    return option(name).panel_default


def items(name: str) -> list:
    """The choices of option ``name`` (what a combo box offers)."""
    return option(name).items


def bounds(name: str) -> tuple[float, float]:
    """The range of number option ``name``."""
    return option(name).bounds


def tooltip(name: str) -> str:
    """The help text of option ``name`` as a widget's tool tip (first ASCII letter upper-case)."""
    text = option(name).help
    return text[:1].upper() + text[1:] if text[:1].isascii() else text


def library_filter(value: Any) -> str | None:
    """The library's filter value: ``None`` for no filter ("none", "", None), else the name."""
    return None if value in (None, "", NO_FILTER) else value


#: how a front end names a run option in a message: "keyword" (the library, the console, the Slicer logic:
#: ``preset='epsilon'``) or "flag" (the command line: ``--preset epsilon``)
SPELLINGS = ("keyword", "flag")


def spell(name: str, value: Any = None, spelling: str = "keyword", flag: str | None = None) -> str:
    """Option ``name`` with the ``value`` given (None: the option alone) as a front end spells it:
    ``alpha=3.0`` / ``--alpha 3``, ``filter_range=(0.2, 0.5)`` / ``--filter-range 0.2 0.5``, ``rules=``. The
    flag is :data:`OPTIONS`' unless ``flag`` names one; an option without a flag (``rules``) keeps its keyword
    on the command line too."""
    flag = flag or (OPTIONS[name].flag if name in OPTIONS else None)
    if spelling == "flag" and flag and value is True:  # a switch: --overwrite
        return flag
    if spelling == "flag" and flag:
        values = value if isinstance(value, (tuple, list)) else () if value is None else (value,)
        return " ".join([flag, *(f"{v:g}" if isinstance(v, float) else str(v) for v in values)])
    if value is None:
        return f"{name}="
    return f"{name}={tuple(value) if isinstance(value, list) else value!r}"


def _spelled(parts: tuple, spelling: str) -> str:
    """``parts`` (text, ``(option, value[, flag])`` pairs, and ``{spelling: text}`` for words that differ between
    front ends, e.g. how to list a model's layers) as one text, each option spelled as ``spelling``."""
    return "".join(p if isinstance(p, str) else p[spelling] if isinstance(p, dict)
                   else spell(p[0], p[1], spelling, *p[2:]) for p in parts)


def _flat(parts: tuple) -> tuple:
    """``parts`` with any :class:`OptionError` or :class:`OptionNote` among them opened into its own parts (another
    exception: its text)."""
    return tuple(q for p in parts for q in (p.parts if isinstance(p, (OptionError, OptionNote))
                                            else (str(p),) if isinstance(p, BaseException) else (p,)))


class OptionError(InputError):
    """A refusal that names run options, written once for every front end: ``parts`` are text and
    ``(option, value)`` pairs (``(option, value, flag)`` for an option :data:`OPTIONS` does not list), see
    :func:`spell`; an :class:`OptionError` or :class:`OptionNote` among them brings its own parts. ``str()`` is
    the library's wording (keywords); a front end whose users type something else shows :meth:`spelled`
    (``cli.run_command``: flags)."""

    def __init__(self, *parts: Any) -> None:
        self.parts = _flat(parts)
        super().__init__(self.spelled("keyword"))

    def spelled(self, spelling: str) -> str:
        """The message with each option spelled as ``spelling`` (one of :data:`SPELLINGS`) says."""
        return _spelled(self.parts, spelling)


class OptionNote(str):
    """A note or warning that names run options (not a refusal), written once as :class:`OptionError`'s parts.
    It is the library's text (keywords), so it is stored as such (``summary.json``, a CSV header); a front end
    whose users type flags prints :func:`spelled` of it (the command line)."""

    parts: tuple

    def __new__(cls, *parts: Any) -> OptionNote:
        flat = _flat(parts)
        note = super().__new__(cls, _spelled(flat, "keyword"))
        note.parts = flat
        return note

    def spelled(self, spelling: str) -> str:
        """The note with each option spelled as ``spelling`` (one of :data:`SPELLINGS`) says."""
        return _spelled(self.parts, spelling)


def named(option: str | tuple[str, str], value: Any) -> str | tuple:
    """The part of an :class:`OptionError` that names ``option`` with ``value``: a ``(keyword, flag)`` pair for an
    option both front ends take (``("out_dir", "--output")``), or one spelling as it is (``"--model"``)."""
    return (option[0], str(value), option[1]) if isinstance(option, tuple) else f"{option} {value}"


def spelled(text: Any, spelling: str) -> str:
    """``text`` as a front end that spells options as ``spelling`` shows it: an :class:`OptionNote` or
    :class:`OptionError` respelled, anything else as ``str()`` writes it."""
    return text.spelled(spelling) if isinstance(text, (OptionError, OptionNote)) else str(text)


def check_without_effect(method: str, preset: str | None, given: dict[str, Any], filter: str | None,
                         filter_range: Any, filter_placement: str, rules: bool = False,
                         runs_lrp: bool | None = None) -> None:
    """Refuse an option that would change nothing with the others given (it would only be recorded).

    The one check behind every front end: ``jobs.Settings`` runs it (console, Slicer logic, web viewer, the
    ``explain`` command line and ``batch``). given: the rule parameters set by the user ("alpha", "epsilon",
    "gamma" -> value; None: not given). Which parameters a preset's rules use is read from the preset registry
    (``engine/presets.py``); ``preset`` None (the card's, not chosen yet) skips that part. ``rules``: custom
    per-layer rules were given (they take the parameters they name; α is not applied over them). ``runs_lrp``:
    whether the run includes LRP (default: the method is lrp or summary; a summary without LRP among its
    methods takes no preset, ``jobs.Settings.runs_lrp``). Filter options need a filter. The refusal
    (:class:`OptionError`) names the options as the library spells them; the command line shows its flags.
    """
    from .engine.presets import preset_parameters

    choose_filter = ("choose a filter: ", ("filter", "pass"), " or ", ("filter", "clamp"))
    if library_filter(filter) is None:
        if tuple(float(v) for v in filter_range) != tuple(option("filter_range").library_default):
            raise OptionError(("filter_range", tuple(float(v) for v in filter_range)), " has no effect without a "
                              "filter; ", *choose_filter, ", or leave the range out.")
        if filter_placement != option("filter_placement").library_default:
            raise OptionError(("filter_placement", filter_placement), " has no effect without a filter; ",
                              *choose_filter, ", or leave the placement out.")
    from .explanation.keywords import LRP_METHODS

    if preset is not None and not (method in LRP_METHODS if runs_lrp is None else runs_lrp):
        fix = "add lrp to the summary's methods" if method == "summary" else "choose the lrp method"
        raise OptionError(("preset", preset), f" has no effect with the method {method}, which runs no LRP "
                          f"(presets are compositions of LRP rules); leave it out, or {fix}.")
    alpha = given.get("alpha")
    if alpha is not None and method != "lrp":
        raise OptionError(("alpha", alpha), f" has no effect with the method {method} (α belongs to LRP's αβ "
                          "presets); leave it out, or choose the lrp method.")
    if alpha is not None and rules:
        raise OptionError(("alpha", alpha), " has no effect beside custom rules (", ("rules", None), "), which "
                          "decide the layers' rules; give AlphaBeta(α, α − 1) in the rules, or leave alpha out.")
    if method != "lrp" or preset is None:
        return
    table = preset_parameters()
    used = table.get(preset, ())
    for name, value in given.items():
        if value is None or name in used or (rules and name != "alpha"):
            continue
        users = [p for p, params in table.items() if name in params]
        uses = f"whose rules use {', '.join(used)}" if used else "whose rules take no parameter"
        raise OptionError((name, value), f" has no effect with the preset {preset}, {uses}; leave it out, or "
                          f"choose a preset that uses it ({', '.join(users)}).")


def is_given(name: str, value: Any) -> bool:
    """Whether ``value`` of option ``name`` counts as given by the user: not None and not the option's library
    default (a front end fills the default when nothing is typed, so the two cannot be told apart later)."""
    if value is None:
        return False
    default = option(name).library_default
    if isinstance(value, (int, float)) and not isinstance(value, bool) and isinstance(default, (int, float)):
        return float(value) != float(default)
    return value != default


def check_region_effect(given: dict[str, Any], atlas: bool, reference: bool | None = None, *,
                        atlas_part: tuple = ("atlas", "AAL3"),
                        reference_part: tuple = ("reference_group", "GROUP", "--reference-group")) -> None:
    """Refuse a region option that would change nothing, as :func:`check_without_effect` refuses a filter range
    without a filter: ``min_overlap``, ``min_region_voxels``, ``min_region_mm3`` or ``gain_on`` without an atlas
    (no region table is made), ``gain_on`` without a reference group (no gain is computed).

    given: option -> the run's value (:func:`is_given` tells a typed value from the default); atlas: whether the
    run names an atlas; reference: whether it names a reference group (None: the front end computes no gain);
    atlas_part, reference_part: how the fix names them (``vocabulary.OptionError`` parts: the keyword of this front
    end's atlas option, ``atlases`` in ``batch``; ``--reference`` in ``neurorelevance regions``)."""
    typed = {name: value for name, value in given.items() if is_given(name, value)}
    for name, value in typed.items():
        if not atlas:
            raise OptionError((name, value), " has no effect without an atlas (no region table is made); name one (",
                              atlas_part, "), or leave it out.")
    if reference is False and "gain_on" in typed:
        raise OptionError(("gain_on", typed["gain_on"]), " has no effect without a reference group (the region gain "
                          "compares each group with it); name one (", reference_part, "), or leave it out.")


def cli_number(name: str) -> Callable[[str], float]:
    """The argparse type of a number option: a finite number within the option's range."""
    from .cli_arguments import number

    return number(*option(name).bounds)


def add_option(parser: Any, name: str, *, help_suffix: str = "", **overrides: Any) -> Any:
    """Add the command-line flag of option ``name`` to an argparse ``parser``: its choices or its range
    (as the flag's type), its library default and its help text; ``overrides`` replace any of these."""
    opt = option(name)
    kwargs: dict[str, Any] = dict(default=opt.library_default)
    if opt.choices is not None:
        kwargs["choices"] = opt.items
    elif opt.low is not None:
        kwargs["type"] = cli_number(name)
    kwargs.update(overrides)
    text = opt.help
    if help_suffix:  # no second parenthesis right after one: "(…); note"
        text = f"{text}; {help_suffix}" if text.endswith(")") else f"{text} ({help_suffix})"
    if opt.low is not None and opt.high is not None and opt.high != float("inf"):
        from .cli_arguments import with_range

        text = with_range(text, f"in [{opt.bounds[0]:g}, {opt.bounds[1]:g}]") or text
    kwargs["help"] = text
    return parser.add_argument(opt.flag, **kwargs)
