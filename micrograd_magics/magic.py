"""AutogradMagics: the %%autograd / %autograd magics, their options and config traits."""

from __future__ import annotations

import math
import shlex
import sys
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import CaselessStrEnum, Float, Int, TraitError, validate
from traitlets.config import Config

from micrograd_magics import pipeline
from micrograd_magics.errors import CellFailed, OneLineError, show_cell_failure
from micrograd_magics.result import after_cell, before_cell


@magics_class
class AutogradMagics(Magics):
    """Run a cell of plain arithmetic on the engine and show its graph with gradients.

    Defaults can be set with `%config AutogradMagics.<name> = ...`.
    """

    max_nodes = Int(300, help="Above this many nodes the graph is drawn collapsed "
                    "(neurons, sums, loop steps as boxes).").tag(config=True)
    precision = Int(4, help="Digits after the point in the graph.").tag(config=True)
    rankdir = CaselessStrEnum(["LR", "TB"], "LR", help="Graph direction.").tag(config=True)
    labels = CaselessStrEnum(["all", "names"], "all",
                             help="Label intermediates with their source text, or only names."
                             ).tag(config=True)
    renderer = CaselessStrEnum(["auto", "dot", "graphviz-pure"], "auto",
                               help="Which Graphviz lays out the graph.").tag(config=True)
    rtol = Float(1e-9, help="Relative tolerance of --torch and --check.").tag(config=True)
    atol = Float(1e-12, help="Absolute tolerance of --torch and --check.").tag(config=True)

    # %config prints a TraitError as one line and keeps the old value, so a bad setting
    # is refused where it is made instead of failing every later cell
    @validate("max_nodes")
    def _check_max_nodes(self, proposal: Any) -> int:
        if proposal["value"] < 1:
            raise TraitError(f"AutogradMagics.max_nodes must be at least 1, not "
                             f"{proposal['value']}")
        return proposal["value"]

    @validate("precision")
    def _check_precision(self, proposal: Any) -> int:
        if not 0 <= proposal["value"] <= MAX_PRECISION:
            raise TraitError(f"AutogradMagics.precision must be between 0 and {MAX_PRECISION}, "
                             f"not {proposal['value']}")
        return proposal["value"]

    @validate("rtol", "atol")
    def _check_tolerance(self, proposal: Any) -> float:
        problem = tolerance_problem(proposal["value"])
        if problem:
            raise TraitError(f"AutogradMagics.{proposal['trait'].name} {problem}")
        return proposal["value"]

    @no_var_expand
    @magic_arguments()
    @argument("root", nargs="?", default=None,
              help="The Value to differentiate (default: the last Value assigned or evaluated).")
    @argument("--torch", action="store_true",
              help="Rebuild the recorded graph in PyTorch float64 and compare every node.")
    @argument("--torch-graph", action="store_true", help="Also draw torch's autograd graph.")
    @argument("--check", choices=["numeric"], default=None,
              help="Check every leaf's gradient by central finite differences (no torch).")
    @argument("--overwrite-grads", action="store_true",
              help="The lecture's bug: backward assigns (=) instead of accumulating (+=).")
    @argument("--no-backward", action="store_true", help="Forward pass only.")
    @argument("--labels", choices=["all", "names"], default=None,
              help="'names': label only assigned names, not intermediate source text.")
    @argument("--static", action="store_true", help="Only the static SVG and table, no widget.")
    @argument("--max-nodes", type=int, default=None, help="Node cap for drawing (default 300).")
    @argument("--rankdir", choices=["LR", "TB"], default=None, help="Graph direction.")
    @argument("--precision", type=int, default=None, help="Digits after the point (default 4).")
    @argument("--rtol", type=float, default=None, help="Relative tolerance (default 1e-9).")
    @argument("--atol", type=float, default=None, help="Absolute tolerance (default 1e-12).")
    @argument("--quiz", action="store_true",
              help="Hide every gradient: predict each one in the widget (right when within "
                   "half a unit of the last digit shown) or with result.check_answers().")
    @argument("--collapse", action="store_true",
              help="Draw the graph collapsed (neurons, sums, loop steps as boxes; click one "
                   "to expand it), as it is anyway above --max-nodes.")
    @argument("--expand", action="store_true",
              help="Draw every scalar node (no collapsing); above --max-nodes: the table.")
    @argument("--live", action="store_true",
              help="Watch a training loop: each loss.backward() the cell calls is recorded and "
                   "shown as it runs (loss curve, parameters per layer, dead ReLU neurons, "
                   "decision boundary); result.history has one entry per backward().")
    @argument("--live-data", default=None, metavar="X,y",
              help="With --live: the 2-D training points and labels for the decision "
                   "boundary (default: X,y or xs,ys when the cell has them).")
    @argument("--engine", default=None,
              help="Run on your own Value class (a name in the notebook or a dotted path).")
    @line_cell_magic
    def autograd(self, line: str, cell: str | None = None) -> Any:
        """%%autograd [ROOT] [options]: run a cell of plain arithmetic on the engine.

        Leaves: a name bound to a number literal (a = 2.0, f = -2) becomes a leaf Value
        labelled with its name; w = [1.0, -2.0] gives leaves w[0], w[1]; a name holding a
        plain number from an earlier cell is a leaf for this run (your variable is kept).
        Counts stay numbers: a name used in range(...) or as an index (w[i]) is not a leaf,
        nor a name that updates a .data/.grad (lr in w.data -= lr * w.grad); write
        n = int(3) to keep any other number plain. A cell that calls Value(...) itself lifts
        nothing. A Value stored into .data or .grad is refused.
        The cell runs once: --torch and --check numeric replay the recorded graph.
        Labels: assignments name their Value; other intermediates show their source text.
        Root: ROOT if given, else the last Value assigned or evaluated.
        tanh, exp, log, relu, sigmoid, sqrt, sin, cos are available as bare functions.
        The line form differentiates one expression: %autograd tanh(w*x + b).
        Every run starts from zero gradients. Returns an AutogradResult (.values, .grads,
        .graph, .torch_grads, .mismatches).
        """
        if cell is None:
            option_text, body = split_line_magic(line)
            header = f"%autograd {line}"
        else:
            option_text, body = line, cell
            header = f"%%autograd {line}".rstrip()
        options = self.options(option_text)
        if cell is None and options.live:
            raise UsageError("--live watches a training loop: use it on a cell, "
                             "%%autograd --live")
        if not body.strip():
            raise UsageError("%autograd needs an expression, e.g. %autograd tanh(w*x + b)"
                             if cell is None else pipeline.NOTHING_TO_DIFFERENTIATE)
        return pipeline.run_cell(self.shell, body, header if cell is not None else "", options)

    def options(self, option_text: str) -> pipeline.Options:
        try:
            args = parse_argstring(self.autograd, option_text)
        except UsageError:
            raise
        except Exception as error:  # shlex: unbalanced quotes
            raise UsageError(f"%%autograd: {error}") from None
        if args.max_nodes is not None and args.max_nodes < 1:
            raise UsageError("--max-nodes must be at least 1")
        if args.precision is not None and not 0 <= args.precision <= MAX_PRECISION:
            raise UsageError(f"--precision must be between 0 and {MAX_PRECISION}")
        for name in ("rtol", "atol"):
            problem = tolerance_problem(getattr(args, name))
            if problem:
                raise UsageError(f"--{name} {problem}")
        if args.quiz and args.overwrite_grads:
            raise UsageError("--quiz checks the right gradients: it works with "
                             "--overwrite-grads off only")
        if args.quiz and (args.torch or args.torch_graph or args.check):
            raise UsageError("--quiz hides the gradients and --torch/--check would show "
                             "them: do the quiz first, then run the cell with --torch")
        if args.collapse and args.expand:
            raise UsageError("--collapse and --expand exclude each other: pick one")
        live_problem(args)
        pick = lambda given, default: default if given is None else given  # noqa: E731
        return pipeline.Options(
            root=args.root, backward=not args.no_backward, accumulate=not args.overwrite_grads,
            labels=pick(args.labels, self.labels), max_nodes=pick(args.max_nodes, self.max_nodes),
            precision=pick(args.precision, self.precision),
            rankdir=pick(args.rankdir, self.rankdir).upper(), static=args.static,
            renderer=self.renderer, torch=args.torch or args.torch_graph,
            torch_graph=args.torch_graph,
            check=args.check, rtol=pick(args.rtol, self.rtol), atol=pick(args.atol, self.atol),
            engine=args.engine, quiz=args.quiz, live=args.live, live_data=args.live_data,
            collapse="collapse" if args.collapse else "expand" if args.expand else "auto")


MAX_PRECISION = 15


def live_problem(args: Any) -> None:
    """UsageError for an option that --live cannot go with."""
    if args.live_data is not None and not args.live:
        raise UsageError("--live-data goes with --live: %%autograd --live --live-data X,y")
    if not args.live:
        return
    clash = [name for name, given in (("--engine", args.engine), ("--quiz", args.quiz),
                                      ("--no-backward", args.no_backward),
                                      ("--overwrite-grads", args.overwrite_grads)) if given]
    if clash:
        raise UsageError(f"--live records the engine's own backward() calls; it does not go "
                         f"with {', '.join(clash)}")


def tolerance_problem(value: float | None) -> str:
    """Why value cannot be a tolerance ("" when it can, or when it was not given): a
    negative or nan tolerance flags every row, an infinite one none."""
    if value is None or (math.isfinite(value) and value >= 0):
        return ""
    return f"must be a finite number >= 0, not {value}"


_TAKES_VALUE = {"--check", "--labels", "--max-nodes", "--rankdir", "--precision", "--rtol",
                "--atol", "--engine", "--live-data"}


def split_line_magic(line: str) -> tuple[str, str]:
    """`--torch --precision 3 tanh(w*x)` -> ("--torch --precision 3", "tanh(w*x)")."""
    rest = line.lstrip()
    options = []
    while rest.startswith("--"):
        token, _, rest = rest.partition(" ")
        options.append(token)
        if token in _TAKES_VALUE:
            value, _, rest = rest.lstrip().partition(" ")
            options.append(value)
        rest = rest.lstrip()
    return " ".join(shlex.quote(o) for o in options), rest


_previous_custom_exc: dict[int, tuple] = {}
_cell_hooks: dict[int, dict[str, Any]] = {}  # id(shell) -> the events registered (widget release)


def load(shell: Any) -> None:
    """Register the magics and the handler that shows a failed cell's own lines only."""
    shell.register_magics(_magics_for(shell))
    if id(shell) not in _previous_custom_exc:
        _previous_custom_exc[id(shell)] = (shell.custom_exceptions, shell.CustomTB)
    shell.set_custom_exc((CellFailed, OneLineError), show_cell_failure)
    if id(shell) not in _cell_hooks:
        hooks = {"pre_run_cell": before_cell(shell), "post_run_cell": after_cell}
        for event, hook in hooks.items():
            shell.events.register(event, hook)
        _cell_hooks[id(shell)] = hooks


def _magics_for(shell: Any) -> AutogradMagics:
    """AutogradMagics on the shell's config. %config refuses a bad value for our traits but
    the shell keeps it in its own config, where it would stop the next %reload_ext: such a
    value is dropped with a one-line warning and the default used."""
    try:
        return AutogradMagics(shell=shell)
    except TraitError:
        pass
    section = shell.config.get("AutogradMagics") or {}
    for name, value in list(section.items()):
        try:
            AutogradMagics(config=Config({"AutogradMagics": {name: value}}))
        except TraitError as error:
            del section[name]
            print(f"%config ignored: {error}", file=sys.stderr)
    return AutogradMagics(shell=shell)


def unload(shell: Any) -> None:
    """Remove what `load` added."""
    for kind in ("line", "cell"):
        shell.magics_manager.magics[kind].pop("autograd", None)
    shell.magics_manager.registry.pop("AutogradMagics", None)
    for event, hook in _cell_hooks.pop(id(shell), {}).items():
        shell.events.unregister(event, hook)
    previous = _previous_custom_exc.pop(id(shell), None)
    if previous is not None:
        shell.custom_exceptions, shell.CustomTB = previous


__all__ = ["AutogradMagics", "load", "unload"]
