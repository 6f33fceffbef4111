"""Allow-lists for the Python expressions a ``.pt2`` archive carries as text.

``torch.export.load`` hands two kinds of strings from the archive to Python's evaluator:
symbolic sizes (``expr_str``) go to ``sympy.sympify`` (which calls ``eval``), and
``guards_code`` lines are compiled with ``exec`` into the module's input checks. Both are
checked here against what ``torch.export.save`` writes: arithmetic and comparisons of numbers,
shape symbols and a fixed set of sympy functions (``expr_str``), or of ``L['x'].size()[i]``
style input sizes (``guards_code``). Anything else (attribute access, other calls, lambdas,
quotes that could end a string in the generated code) is refused.
"""
from __future__ import annotations

import ast
import re
from collections.abc import Callable

_SYMBOL = re.compile(r"^[a-z]+[0-9]+$")
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: sympy callables an exported size may use (torch's own list plus sympy's basics)
SYMPY_FUNCTIONS = frozenset({
    "Symbol", "Integer", "Float", "Rational", "Add", "Mul", "Pow", "Min", "Max", "Eq", "Ne", "Lt", "Le", "Gt", "Ge",
    "And", "Or", "Not", "Abs", "sqrt", "floor", "ceiling", "Piecewise", "Mod", "FloorDiv",
    "ModularIndexing", "Where", "PythonMod", "CleanDiv", "CeilToInt", "FloorToInt", "CeilDiv",
    "LShift", "RShift", "PowByNatural", "FloatPow", "FloatTrueDiv", "IntTrueDiv",
    "IsNonOverlappingAndDenseIndicator", "TruncToFloat", "TruncToInt", "RoundToInt",
    "RoundDecimal", "ToFloat", "Identity"})
SYMPY_CONSTANTS = frozenset({"oo", "zoo", "nan", "pi", "E", "true", "false", "True", "False", "None"})
SYMBOL_KEYWORDS = frozenset({"positive", "negative", "integer", "real", "nonnegative", "finite",
                             "nonpositive", "nonzero"})
#: methods of an input tensor a guard may read
GUARD_METHODS = frozenset({"size", "stride", "storage_offset", "dim"})

_ARITHMETIC = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp, ast.Add, ast.Sub,
               ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.USub, ast.UAdd, ast.Not,
               ast.And, ast.Or, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.BitAnd,
               ast.BitOr, ast.LShift, ast.RShift, ast.Load)


def _parse(text: str) -> ast.Expression | None:
    if not isinstance(text, str) or len(text) > 10_000 or any(ch in text for ch in "\r\n\x00"):
        return None
    try:
        return ast.parse(text, mode="eval")
    except (SyntaxError, ValueError):
        return None


def _constant_ok(node: ast.Constant) -> bool:
    value = node.value
    if isinstance(value, str):
        return bool(_PLAIN.match(value))
    return value is None or isinstance(value, (bool, int, float))


def _allowed(text: str, node_ok: Callable[[ast.AST], bool]) -> bool:
    """True if every node of ``text`` is arithmetic, a plain constant, or accepted by ``node_ok``."""
    tree = _parse(text)
    if tree is None:
        return False
    for node in ast.walk(tree):
        if isinstance(node, _ARITHMETIC):
            continue
        if not (_constant_ok(node) if isinstance(node, ast.Constant) else node_ok(node)):
            return False
    return True


def _sympy_node_ok(node: ast.AST) -> bool:
    if isinstance(node, ast.Name):
        return node.id in SYMPY_FUNCTIONS or node.id in SYMPY_CONSTANTS or bool(_SYMBOL.match(node.id))
    if isinstance(node, ast.Call):
        return isinstance(node.func, ast.Name) and node.func.id in SYMPY_FUNCTIONS
    if isinstance(node, ast.keyword):
        return node.arg in SYMBOL_KEYWORDS and isinstance(node.value, ast.Constant) \
            and isinstance(node.value.value, bool)
    return False


def _guard_node_ok(node: ast.AST) -> bool:
    if isinstance(node, ast.Name):
        return node.id == "L"
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant)
    if isinstance(node, ast.Call):
        return not node.args and not node.keywords and isinstance(node.func, ast.Attribute) \
            and node.func.attr in GUARD_METHODS
    if isinstance(node, ast.Attribute):
        return node.attr in GUARD_METHODS
    return False


def symbolic_expression_ok(text: str) -> bool:
    """True if ``text`` is a size expression ``torch.export`` writes (safe to give to sympify)."""
    return _allowed(text, _sympy_node_ok)


def guard_ok(text: str) -> bool:
    """True if ``text`` only compares input sizes (``L['x'].size()[0] <= 64``) and numbers."""
    return _allowed(text, _guard_node_ok)
