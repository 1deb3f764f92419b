"""The numbers of Karpathy's micrograd lecture, micrograd's own sanity checks, and the
backward machinery a learner steps through: topological order, backward steps, zero_grad."""

from __future__ import annotations

import pytest

import engine
from engine import Value, backward_steps, topological_order, zero_grad

TORCH_REASON = "torch is optional (pip install 'micrograd-magics[torch]'); compared when installed"


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason=TORCH_REASON)


def tensor(torch, x: float):
    return torch.tensor([x], dtype=torch.float64, requires_grad=True)


# --- the lecture, by hand ----------------------------------------------------------------


def lecture_graph():
    a = Value(2.0, label="a")
    b = Value(-3.0, label="b")
    c = Value(10.0, label="c")
    e = a * b
    e.label = "e"
    d = e + c
    d.label = "d"
    f = Value(-2.0, label="f")
    L = d * f
    L.label = "L"
    return a, b, c, e, d, f, L


def test_lecture_expression_gradients_by_hand():
    a, b, c, e, d, f, L = lecture_graph()
    assert L.data == -8.0
    L.backward()
    assert L.grad == 1.0
    assert a.grad == 6.0
    assert b.grad == -4.0
    assert c.grad == -2.0
    assert e.grad == -2.0
    assert d.grad == -2.0
    assert f.grad == 4.0


def neuron_graph(tanh=engine.tanh):
    x1 = Value(2.0, label="x1")
    x2 = Value(0.0, label="x2")
    w1 = Value(-3.0, label="w1")
    w2 = Value(1.0, label="w2")
    b = Value(6.8813735870195432, label="b")
    x1w1 = x1 * w1
    x2w2 = x2 * w2
    x1w1x2w2 = x1w1 + x2w2
    n = x1w1x2w2 + b
    o = tanh(n)
    return x1, x2, w1, w2, b, x1w1, x2w2, x1w1x2w2, n, o


@pytest.mark.parametrize("tanh", [engine.tanh, lambda n: n.tanh()], ids=["tanh(n)", "n.tanh()"])
def test_lecture_tanh_neuron_by_hand(tanh):
    x1, x2, w1, w2, b, _, _, _, n, o = neuron_graph(tanh)
    o.backward()
    assert o.data == pytest.approx(0.7071, abs=1e-4)
    assert n.grad == pytest.approx(0.5)
    assert b.grad == pytest.approx(0.5)
    assert w1.grad == pytest.approx(1.0)
    assert x1.grad == pytest.approx(-1.5)
    assert x2.grad == pytest.approx(0.5)
    assert w2.grad == pytest.approx(0.0)


def test_lecture_manual_backward_one_node_at_a_time():
    """The lecture before `backward()` exists: seed o.grad, then call each `_backward()`."""
    x1, x2, w1, w2, b, x1w1, x2w2, x1w1x2w2, n, o = neuron_graph()
    o.grad = 1.0
    o._backward()
    assert n.grad == pytest.approx(0.5)
    assert x1w1x2w2.grad == 0.0  # not reached yet: one rule per call
    n._backward()
    assert x1w1x2w2.grad == pytest.approx(0.5) and b.grad == pytest.approx(0.5)
    b._backward()  # a leaf's rule does nothing
    assert b.grad == pytest.approx(0.5)
    x1w1x2w2._backward()
    assert x1w1.grad == pytest.approx(0.5) and x2w2.grad == pytest.approx(0.5)
    x2w2._backward()
    assert x2.grad == pytest.approx(0.5) and w2.grad == 0.0
    x1w1._backward()
    assert x1.grad == pytest.approx(-1.5) and w1.grad == pytest.approx(1.0)


def test_node_used_twice_gets_both_contributions():
    a = Value(3.0, label="a")
    b = a + a
    b.backward()
    assert a.grad == 2.0
    a2 = Value(-3.0)
    (a2 * a2).backward()
    assert a2.grad == -6.0


def test_backward_accumulates_like_micrograd():
    a = Value(3.0)
    b = a * 2.0
    b.backward()
    b.backward()
    assert a.grad == 4.0  # += across calls, as micrograd and torch's leaves do


# --- micrograd's test_engine.py sanity checks ----------------------------------------------


def sanity_check(x):
    """micrograd's test_sanity_check: the same code for Values, tensors and micrograd."""
    z = 2 * x + 2 + x
    q = z.relu() + z * x
    h = (z * z).relu()
    y = h + q + q * x
    return y


def more_ops(a, b):
    """micrograd's test_more_ops, `+=` and all."""
    c = a + b
    d = a * b + b**3
    c += c + 1
    c += 1 + c + (-a)
    d += d * 2 + (b + a).relu()
    d += 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g += 10.0 / f
    return g


def test_sanity_check_by_hand():
    x = Value(-4.0)
    y = sanity_check(x)
    y.backward()
    assert y.data == -20.0
    assert x.grad == 46.0


def test_sanity_check_matches_torch_exactly(torch):
    x = Value(-4.0)
    y = sanity_check(x)
    y.backward()
    xt = tensor(torch, -4.0)
    yt = sanity_check(xt)
    yt.backward()
    assert y.data == yt.data.item()
    assert x.grad == pytest.approx(xt.grad.item(), rel=1e-12, abs=0.0)


def test_more_ops_matches_torch(torch):
    a, b = Value(-4.0), Value(2.0)
    g = more_ops(a, b)
    g.backward()
    at, bt = tensor(torch, -4.0), tensor(torch, 2.0)
    gt = more_ops(at, bt)
    gt.backward()
    assert g.data == gt.data.item()
    assert a.grad == pytest.approx(at.grad.item(), rel=1e-12, abs=0.0)
    assert b.grad == pytest.approx(bt.grad.item(), rel=1e-12, abs=0.0)


def test_more_ops_by_hand():
    a, b = Value(-4.0), Value(2.0)
    g = more_ops(a, b)
    g.backward()
    assert g.data == pytest.approx(24.5 + 10 / 49, rel=1e-15)  # e = -7, f = 49
    assert a.grad == pytest.approx(138.83381924198252, rel=1e-12)
    assert b.grad == pytest.approx(645.5772594752186, rel=1e-12)


def test_sanity_checks_match_micrograd_itself():
    micrograd = pytest.importorskip("micrograd.engine", reason="micrograd is a dev dependency")
    x, xm = Value(-4.0), micrograd.Value(-4.0)
    y, ym = sanity_check(x), sanity_check(xm)
    y.backward()
    ym.backward()
    assert (y.data, x.grad) == (ym.data, xm.grad)
    a, b = Value(-4.0), Value(2.0)
    am, bm = micrograd.Value(-4.0), micrograd.Value(2.0)
    g, gm = more_ops(a, b), more_ops(am, bm)
    g.backward()
    gm.backward()
    assert g.data == pytest.approx(gm.data, rel=1e-15)
    assert a.grad == pytest.approx(am.grad, rel=1e-12)
    assert b.grad == pytest.approx(bm.grad, rel=1e-12)


# --- topological order, backward steps, zero_grad ----------------------------------------


def all_graphs():
    """A few graphs with reuse: the lecture, the neuron, micrograd's more_ops."""
    yield lecture_graph()[-1]
    yield neuron_graph()[-1]
    yield more_ops(Value(-4.0), Value(2.0))
    x = Value(-4.0)
    yield sanity_check(x)


@pytest.mark.parametrize("root", list(all_graphs()), ids=["lecture", "neuron", "more_ops",
                                                            "sanity"])
def test_topological_order_puts_parents_before_children(root):
    order = topological_order(root)
    position = {id(node): n for n, node in enumerate(order)}
    assert len(position) == len(order)  # each node once
    assert order[-1] is root
    for node in order:
        for parent in node._prev:
            assert position[id(parent)] < position[id(node)]
    # every node reachable from root is there
    reachable, stack = set(), [root]
    while stack:
        node = stack.pop()
        if id(node) not in reachable:
            reachable.add(id(node))
            stack.extend(node._prev)
    assert set(position) == reachable


def test_topological_order_of_lecture_graph():
    a, b, c, e, d, f, L = lecture_graph()
    order = topological_order(L)
    assert {id(n) for n in order} == {id(n) for n in (a, b, c, e, d, f, L)}
    index = [id(n) for n in order].index
    assert index(id(a)) < index(id(e)) < index(id(d)) < index(id(L))
    assert index(id(f)) < index(id(L))
    assert topological_order(a) == [a]


@pytest.mark.parametrize("root", list(all_graphs()), ids=["lecture", "neuron", "more_ops",
                                                            "sanity"])
def test_backward_steps_run_each_rule_after_all_its_users(root):
    zero_grad(root)
    steps = backward_steps(root)
    position = {id(step.node): n for n, step in enumerate(steps)}
    order = topological_order(root)
    inner = [node for node in order if node._prev]
    assert len(steps) == len(position) == len(inner)  # each rule once, leaves have none
    assert steps[0].node is root and steps[0].upstream == 1.0
    for node in inner:
        for parent in node._prev:
            if parent._prev:  # the parent's rule runs after this node, its user
                assert position[id(node)] < position[id(parent)]


@pytest.mark.parametrize("root", list(all_graphs()), ids=["lecture", "neuron", "more_ops",
                                                            "sanity"])
def test_backward_steps_end_with_backwards_grads(root):
    order = topological_order(root)
    zero_grad(root)
    steps = backward_steps(root)
    stepped = [node.grad for node in order]
    zero_grad(root)
    root.backward()
    assert [node.grad for node in order] == pytest.approx(stepped, rel=1e-15, abs=0.0)
    for step in steps:  # every record is consistent with the rule it ran
        assert len(step.updates) == len(step.node._prev)
        for update, parent in zip(step.updates, step.node._prev):
            assert update.parent is parent
            assert update.contribution == step.upstream * update.local
            assert update.after == update.before + update.contribution


def test_backward_steps_of_the_lecture_by_hand():
    a, b, c, e, d, f, L = lecture_graph()
    steps = backward_steps(L)
    assert [step.node.label for step in steps] == ["L", "d", "e"]
    assert [(u.parent.label, u.local, u.after) for u in steps[0].updates] == [
        ("d", -2.0, -2.0), ("f", 4.0, 4.0)]
    assert [(u.parent.label, u.after) for u in steps[1].updates] == [("e", -2.0), ("c", -2.0)]
    assert [(u.parent.label, u.after) for u in steps[2].updates] == [("a", 6.0), ("b", -4.0)]
    assert (a.grad, b.grad, c.grad, e.grad, d.grad, f.grad) == (6.0, -4.0, -2.0, -2.0, -2.0, 4.0)


def test_backward_steps_without_accumulate_reproduce_the_lecture_bug():
    a = Value(3.0, label="a")
    b = a + a
    steps = backward_steps(b, accumulate=False)
    assert a.grad == 1.0  # `=` instead of `+=`: the second contribution overwrote the first
    assert [(u.before, u.contribution, u.after) for u in steps[0].updates] == [
        (0.0, 1.0, 1.0), (1.0, 1.0, 1.0)]
    zero_grad(b)
    backward_steps(b)
    assert a.grad == 2.0


def test_backward_steps_without_accumulate_on_a_shared_node():
    a, b = Value(2.0), Value(3.0)
    e = a * b
    out = e + e * a  # e has two users, a has two users
    backward_steps(out, accumulate=False)
    wrong = (a.grad, b.grad)
    zero_grad(out)
    out.backward()
    assert (a.grad, b.grad) == (b.data + 2 * a.data * b.data, a.data + a.data**2)
    assert wrong != (a.grad, b.grad)


@pytest.mark.parametrize("root", list(all_graphs()), ids=["lecture", "neuron", "more_ops",
                                                            "sanity"])
def test_zero_grad_resets_every_node(root):
    root.backward()
    order = topological_order(root)
    assert any(node.grad != 0.0 for node in order)
    zero_grad(root)
    assert all(node.grad == 0.0 for node in order)


def test_running_backward_twice_after_zero_grad_gives_the_same_numbers():
    a, b, c, e, d, f, L = lecture_graph()
    L.backward()
    first = [n.grad for n in (a, b, c, e, d, f, L)]
    zero_grad(L)
    L.backward()
    assert [n.grad for n in (a, b, c, e, d, f, L)] == first


def test_local_gradients_name_each_parent_with_its_derivative():
    a, b, c, e, d, f, L = lecture_graph()
    assert engine.local_gradients(L) == [(d, -2.0), (f, 4.0)]
    assert engine.local_gradients(e) == [(a, -3.0), (b, 2.0)]
    assert engine.local_gradients(a) == []
    t = Value(0.5).tanh()
    ((parent, local),) = engine.local_gradients(t)
    assert local == pytest.approx(1 - t.data**2)


def test_micrograd_names_on_a_graph():
    a, b, c, e, d, f, L = lecture_graph()
    assert L._op == "*" and L._prev == (d, f)
    assert d._op == "+" and d._prev == (e, c)
    assert a._op == "" and a._prev == ()
    assert [n.label for n in (a, b, c, e, d, f, L)] == ["a", "b", "c", "e", "d", "f", "L"]
    assert Value(1.0).label == ""
    assert "label='a'" in repr(a) and "data=2.0" in repr(a)


def test_backward_along_a_given_order_matches_the_walk():
    """The magic hands backward the order it already has; the grads must not change."""
    def lecture():
        a, b, c, f = Value(2.0, "a"), Value(-3.0, "b"), Value(10.0, "c"), Value(-2.0, "f")
        e = a * b
        L = (e + c) * f + a * a  # a is reused
        return (a, b, c, f), L

    (a1, b1, c1, f1), L1 = lecture()
    engine.backward(L1)
    (a2, b2, c2, f2), L2 = lecture()
    engine.backward(L2, engine.topological_order(L2))
    assert [a2.grad, b2.grad, c2.grad, f2.grad] == [a1.grad, b1.grad, c1.grad, f1.grad]
    assert a2.grad == 10.0  # dL/da = b*f + 2a = 6 + 4


def test_graphs_can_be_deep_copied_and_pickled():
    import copy
    import pickle

    a, b = Value(2.0, "a"), Value(-3.0, "b")
    L = (a * b + 1).tanh()
    for twin in (copy.deepcopy(L), pickle.loads(pickle.dumps(L))):
        assert twin._op is L._op  # the table's op itself, so its rule still applies
        twin.backward()
        L.backward()
        assert twin.data == L.data
        assert twin._prev[0]._prev[0]._prev[0].grad == a.grad
        zero_grad(L)


def test_zeroed_backward_is_zero_grad_then_backward_in_one_walk():
    """What the magic runs on big graphs: stale grads are cleared, the grads are the
    lecture's, and the order it returns is topological_order's, reversed."""
    a, b, c, e, d, f, L = lecture_graph()
    L.backward()
    L.backward()  # stale grads, as in micrograd: intermediate grads accumulate too
    assert a.grad == 24.0
    order = engine.zeroed_backward(L)
    assert [a.grad, b.grad, c.grad, f.grad, e.grad, d.grad, L.grad] == [
        6.0, -4.0, -2.0, 4.0, -2.0, -2.0, 1.0]
    assert order == list(reversed(topological_order(L)))
    assert order[0] is L


def test_constant_is_the_number_folded_into_the_op():
    from engine.value import constant

    x, y = Value(3.0), Value(4.0)
    assert constant(x * 2) == 2.0
    assert constant(2.5 - x) == 2.5
    assert constant(x * y) is None  # + and * of two Values leave _k unset
    assert constant(x - y) is None
    assert constant(x.tanh()) is None
    assert constant(x) is None
