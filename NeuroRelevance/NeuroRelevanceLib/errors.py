"""Exceptions raised by NeuroRelevance for input the user can fix, and the wording shared by their messages."""
from __future__ import annotations

import re
from typing import Any


class InputError(ValueError):
    """Bad input: the message names the cause and the fix. Nothing was changed."""


#: the first line of an error raised inside the TorchScript interpreter: it names no cause
_TORCHSCRIPT = "The following operation failed in the TorchScript interpreter."
_CAUSE = re.compile(r"^(?:[A-Za-z_][\w.]*(?:Error|Exception)): (.+)$")


def cause_line(exc: BaseException, limit: int = 300) -> str:
    """The line of ``exc``'s message that names the cause: its first line, or — for an error raised inside the
    TorchScript interpreter, whose first line only says where it happened — the last ``SomeError: ...`` line of
    the TorchScript traceback, without that prefix. A final full stop is dropped (messages add their own).
    """
    return _cause_line(exc, limit).rstrip(".") or type(exc).__name__


def _cause_line(exc: BaseException, limit: int) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if lines[0] == _TORCHSCRIPT:
        for line in reversed(lines[1:]):
            found = _CAUSE.match(line)
            if found:
                return found.group(1)[:limit]
        return lines[-1][:limit]
    return lines[0][:limit]


def output_form(out: Any) -> str:
    """What a model returned, in words: "a dict (keys 'logits', 'features')", "a tuple of 2 values", ..."""
    if isinstance(out, dict):
        return f"a dict (keys {', '.join(repr(k) for k in list(out)[:6])})"
    if isinstance(out, (tuple, list)):
        return f"a {type(out).__name__} of {len(out)} values"
    return f"a {type(out).__name__}"


def one_tensor_error(out: Any, form: str | None = None) -> InputError:
    """The refusal of a model whose forward returns ``out``, not one tensor: what it returns (``form``, else
    :func:`output_form`) and the wrapper that fixes it."""
    if isinstance(out, dict) and out:
        pick = f"[{next(iter(out))!r}]"
    elif isinstance(out, (tuple, list)) and out:
        pick = "[0]"
    else:
        pick = ""
    return InputError(
        f"The model returns {form or output_form(out)}, not one tensor: NeuroRelevance explains one output tensor (a "
        f"classifier's logits, a regression value or a segmentation's class channels). Wrap the network so that it "
        f"returns that tensor, e.g. class Logits(nn.Module): def __init__(self, net): super().__init__(); "
        f"self.net = net; def forward(self, x): return self.net(x){pick} — then pass the wrapper, or save it "
        f"(torch.jit.script / torch.jit.trace / torch.export) and name that file as the card's weights.")
