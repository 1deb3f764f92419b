"""User mistakes, shown as the user's own cell lines and a short message, never our internals."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

_OUR_DIRS = tuple(str(Path(__file__).resolve().parent.parent / pkg) for pkg in
                  ("engine", "micrograd_magics"))


ExcInfo = tuple[type[BaseException], BaseException, types.TracebackType | None]


class CellFailed(Exception):
    """Raised by the magic when the user's cell failed; carries the error to show.

    The extension registers a handler for it (`shell.set_custom_exc`), so the cell is
    marked as failed and only `exc_info` (the user's frames) is shown.
    """

    def __init__(self, exc_info: ExcInfo) -> None:
        super().__init__(str(exc_info[1]))
        self.exc_info = exc_info


def user_frames(tb: types.TracebackType | None, cell_filename: str) -> types.TracebackType | None:
    """The traceback with only the user's frames: from the first frame of the cell on,
    leaving out frames of engine/ and micrograd_magics/ (what the learner wrote stays)."""
    frames = []
    started = False
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        started = started or filename == cell_filename
        if started and not filename.startswith(_OUR_DIRS):
            frames.append(tb)
        tb = tb.tb_next
    return _chain(frames)


def their_frames(tb: types.TracebackType | None) -> types.TracebackType | None:
    """The frames after our last one: the learner's backward() and closures, which we
    called (None if the error was raised in our own code)."""
    theirs: list[types.TracebackType] = []
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.startswith(_OUR_DIRS):
            theirs = []
        else:
            theirs.append(tb)
        tb = tb.tb_next
    return _chain(theirs)


def _chain(frames: list[types.TracebackType]) -> types.TracebackType | None:
    """A new traceback through just these frames, in order."""
    chain = None
    for frame_tb in reversed(frames):
        chain = types.TracebackType(chain, frame_tb.tb_frame, frame_tb.tb_lasti,
                                    frame_tb.tb_lineno)
    return chain


_FOREIGN_CALL = re.compile(r"\b(math|np|numpy|torch|cmath)\.(\w+)\s*\(")


def explain(error: BaseException, line: str) -> BaseException:
    """The same error with a hint when a known learner mistake caused it."""
    message = str(error)
    if not isinstance(error, TypeError):
        return error
    call = _FOREIGN_CALL.search(line)
    if call and ("real number" in message or "Value" in message):
        module, name = call.groups()
        bare = ("tanh", "exp", "log", "relu", "sigmoid", "sqrt", "sin", "cos")
        if name in bare:
            advice = f"use the bare {name}(x) or x.{name}()"
        elif name in ("fabs", "abs"):
            advice = "use abs(x)"
        else:
            advice = (f"the graph has no {name}: write it with the ops there are "
                      f"({', '.join(bare)}, + - * / **)")
        return TypeError(
            f"{module}.{name}() got a Value and cannot record a gradient. Inside %%autograd "
            f"{advice}.")
    if "Value" in message and ("cannot be interpreted as an integer" in message
                               or "indices must be" in message or "non-int" in message):
        return TypeError(
            f"{message}: a name bound to a number literal becomes a leaf Value. Names used in "
            f"range() or as an index stay numbers; elsewhere write `n = int(3)` to keep "
            f"a plain number.")
    reflected = _UNSUPPORTED.search(message)
    if reflected and reflected.group(2) in _NUMBER_TYPES and reflected.group(3) != "str":
        symbol, number, theirs = reflected.groups()
        dunder = _REFLECTED.get(symbol)
        if dunder:
            return TypeError(
                f"{message}: Python tries {number}.{dunder.replace('__r', '__', 1)} first, "
                f"then {theirs}.{dunder}; your {theirs} class has no {dunder}. Add "
                f"`def {dunder}(self, other): {_REFLECTED_BODY[dunder]}` "
                f"(other {symbol.split()[0]} self)")
    return error


_UNSUPPORTED = re.compile(r"unsupported operand type\(s\) for ([^:]+): '(\w+)' and '(\w+)'")
_NUMBER_TYPES = {"int", "float"}
_REFLECTED = {"+": "__radd__", "*": "__rmul__", "-": "__rsub__", "/": "__rtruediv__",
              "** or pow()": "__rpow__"}
_REFLECTED_BODY = {  # each computes `other <op> self`, with the ops micrograd's Value has
    "__radd__": "return self + other", "__rmul__": "return self * other",
    "__rsub__": "return (-self) + other", "__rtruediv__": "return self**-1 * other",
    "__rpow__": "return type(self)(other) ** self"}


def cell_line(tb: types.TracebackType | None, filename: str) -> int | None:
    """The line of the deepest frame of the cell in a traceback, if any."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def source_line(filename: str, lineno: int) -> str:
    import linecache

    return linecache.getline(filename, lineno)


def rethrow_as_cell_failure(cell_filename: str) -> CellFailed:
    """The current exception as a CellFailed with the user's frames and a hint if any."""
    etype, error, tb = sys.exc_info()
    assert error is not None and etype is not None
    frames = user_frames(tb, cell_filename)
    if isinstance(error, SyntaxError):
        return CellFailed((etype, error, None))
    last = frames
    while last is not None and last.tb_next is not None:
        last = last.tb_next
    line = source_line(last.tb_frame.f_code.co_filename, last.tb_lineno) if last else ""
    shown = explain(error, line)
    if shown is not error:
        shown.__cause__ = None
        shown.__suppress_context__ = True
    return CellFailed((type(shown), shown, frames))


class OneLineError(Exception):
    """A mistake in a call on a result (`save`, `nudge`, `set`, `check_answers`): the
    extension shows it as one line, `SaveError: cannot save g.svg: ...`, never our frames."""


class SaveError(OSError, OneLineError):
    """`result.save(path)` could not write the file (a missing folder, no permission);
    `except OSError` still catches it."""


def show_cell_failure(shell, etype, value, tb, tb_offset=None) -> None:  # noqa: ANN001
    """IPython custom-exception handler: show only the user's error."""
    if isinstance(value, OneLineError):
        shell._showtraceback(etype, value, [f"{etype.__name__}: {value}"])
        return
    error_type, error, frames = value.exc_info
    running = getattr(shell.displayhook, "exec_result", None)
    if running is not None:  # the kernel's reply names the user's error, not our wrapper
        running.error_in_exec = error
    if issubclass(error_type, SyntaxError):
        stb = shell.SyntaxTB.structured_traceback(error_type, error, [])
        shell._showtraceback(error_type, error, stb)
        return
    shell.showtraceback((error_type, error, frames), tb_offset=0)
