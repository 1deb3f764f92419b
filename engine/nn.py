"""Module, Neuron, Layer, MLP with micrograd's signatures: its demo runs with one import changed."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator, Sequence

from engine.value import Value, weighted_sum

CallObserver = Callable[["Module", Sequence, object], None]
_call_observers: list[CallObserver] = []


@contextlib.contextmanager
def observing_calls(observer: CallObserver) -> Iterator[None]:
    """Call `observer(module, x, out)` after every Neuron, Layer and MLP call in the block.

    Inner calls are seen first (a Neuron's before its Layer's). This is how a tool learns
    which nodes a neuron made (the graph between `x` and `out`) or whether a ReLU neuron
    is dead, without walking the graph or wrapping the model. Without observers a call
    pays one check of an empty list.
    """
    _call_observers.append(observer)
    try:
        yield
    finally:
        _call_observers.remove(observer)


def _tell_observers(module: Module, x: Sequence, out: object) -> None:
    for observer in list(_call_observers):
        observer(module, x, out)


class Module:
    """Something with parameters whose gradients can be reset."""

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = 0.0

    def parameters(self) -> list[Value]:
        return []

    def named_parameters(self) -> list[tuple[str, Value]]:
        """(path, parameter) pairs, the path as you would reach the parameter in code:
        `w[0]`, `b`, `neurons[3].w[1]`, `layers[0].neurons[3].b`."""
        return []


class Neuron(Module):
    """sum(w_i * x_i) + b, through ReLU unless `nonlin=False`."""

    def __init__(self, nin: int, nonlin: bool = True) -> None:
        self.w = [Value(random.uniform(-1, 1)) for _ in range(nin)]
        self.b = Value(0)
        self.nonlin = nonlin

    def __call__(self, x: Sequence[Value | float]) -> Value:
        act = weighted_sum(self.b, self.w, x)  # b + w0*x0 + w1*x1 + ..., as micrograd sums
        out = act.relu() if self.nonlin else act
        if _call_observers:
            _tell_observers(self, x, out)
        return out

    def parameters(self) -> list[Value]:
        return self.w + [self.b]

    def named_parameters(self) -> list[tuple[str, Value]]:
        return [(f"w[{i}]", w) for i, w in enumerate(self.w)] + [("b", self.b)]

    def __repr__(self) -> str:
        return f"{'ReLU' if self.nonlin else 'Linear'}Neuron({len(self.w)})"


class Layer(Module):
    """nout neurons that each see all nin inputs."""

    def __init__(self, nin: int, nout: int, **kwargs: bool) -> None:
        self.neurons = [Neuron(nin, **kwargs) for _ in range(nout)]

    def __call__(self, x: Sequence[Value | float]) -> Value | list[Value]:
        out = [n(x) for n in self.neurons]
        out = out[0] if len(out) == 1 else out
        if _call_observers:
            _tell_observers(self, x, out)
        return out

    def parameters(self) -> list[Value]:
        return [p for n in self.neurons for p in n.parameters()]

    def named_parameters(self) -> list[tuple[str, Value]]:
        return [(f"neurons[{j}].{path}", p) for j, n in enumerate(self.neurons)
                for path, p in n.named_parameters()]

    def __repr__(self) -> str:
        return f"Layer of [{', '.join(str(n) for n in self.neurons)}]"


class MLP(Module):
    """Layers of sizes nin -> nouts[0] -> ... -> nouts[-1]; ReLU on all but the last."""

    def __init__(self, nin: int, nouts: list[int]) -> None:
        sz = [nin] + nouts
        self.layers = [Layer(sz[i], sz[i + 1], nonlin=i != len(nouts) - 1)
                       for i in range(len(nouts))]

    def __call__(self, x: Sequence[Value | float]) -> Value | list[Value]:
        out = x
        for layer in self.layers:
            out = layer(out)
        if _call_observers:
            _tell_observers(self, x, out)
        return out

    def parameters(self) -> list[Value]:
        return [p for layer in self.layers for p in layer.parameters()]

    def named_parameters(self) -> list[tuple[str, Value]]:
        return [(f"layers[{k}].{path}", p) for k, layer in enumerate(self.layers)
                for path, p in layer.named_parameters()]

    def __repr__(self) -> str:
        return f"MLP of [{', '.join(str(layer) for layer in self.layers)}]"
