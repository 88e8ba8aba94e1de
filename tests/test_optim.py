"""lesson5.optim against torch.optim on random float64 problems, and the spreadsheet against torch."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from lesson5 import graddesc, optim
from lesson5.graddesc import torch_rows

CASES = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.5, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, maximize=True)),
    ("Adagrad", dict()),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.5)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.1, momentum=0.9)),
    ("RMSprop", dict(lr=0.003, centered=True, momentum=0.5)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.7, 0.9), eps=1e-6, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.01)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, betas=(0.8, 0.95), weight_decay=0.3, amsgrad=True)),
]
pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def problem(seeds=(0, 1, 2)):
    """Random float64 two-layer tanh regressions, one per seed, summed (every optimizer is elementwise)."""
    init, parts = [], []
    for seed in seeds:
        g = torch.Generator().manual_seed(seed)
        x, y, *ps = (torch.randn(*s, generator=g, dtype=torch.float64) for s in SHAPES)
        parts.append((x, y, len(init)))
        init += ps

    def loss(ps):
        return sum(
            ((torch.tanh(x @ ps[k] + ps[k + 1]) @ ps[k + 2] - y) ** 2).mean() for x, y, k in parts
        )

    return init, loss


SHAPES = [(32, 4), (32, 1), (4, 8), (8,), (8, 1)]  # x, y, then the weights w1, b1, w2


def trajectory(make, init, loss, steps=100):
    ps = [p.clone().requires_grad_() for p in init]
    opt, out = make(ps), []
    for _ in range(steps):
        opt.zero_grad()
        loss(ps).backward()
        opt.step()
        out.append(torch.cat([p.detach().flatten() for p in ps]).clone())
    return torch.stack(out)


def rel(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


@pytest.mark.parametrize("name,kw", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_matches_torch(name, kw):
    init, loss = problem()
    ours = trajectory(lambda ps: getattr(optim, name)(ps, **kw), init, loss)
    theirs = trajectory(lambda ps: getattr(torch.optim, name)(ps, **kw), init, loss)
    assert (ours - torch.cat([p.flatten() for p in init])).abs().max() > 1e-3  # the weights move
    assert rel(ours, theirs) < 1e-10


def test_param_groups_defaults_and_bad_arguments_match_torch():
    for name in ("SGD", "Adagrad", "RMSprop", "Adam", "AdamW"):
        theirs = inspect.signature(getattr(torch.optim, name)).parameters
        for arg, p in inspect.signature(getattr(optim, name)).parameters.items():
            assert theirs[arg].default == p.default, (name, arg)
    init, loss = problem((3,))

    def groups(mod):
        return lambda ps: mod.SGD([{"params": ps[:2]}, {"params": ps[2:], "lr": 0.2}], 0.05, 0.9)

    ours, theirs = (trajectory(groups(mod), init, loss) for mod in (optim, torch.optim))
    assert rel(ours, theirs) < 1e-10
    with pytest.raises(ValueError, match="Nesterov"):  # bad lr, betas: test_hostile_models.py
        optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1, nesterov=True)


def test_adamw_is_decay_then_adam_step():
    init, loss = problem((4,))
    lr, wd = 0.01, 0.3
    a = trajectory(lambda ps: optim.AdamW(ps, lr=lr, weight_decay=wd), init, loss, steps=1)
    ps = [p.clone().requires_grad_() for p in init]
    loss(ps).backward()  # the gradient at the unshrunk point, as AdamW takes it
    # Shrink by (1 - lr wd), then one bias-corrected Adam step: m_hat = g, v_hat = g^2.
    want = [p * (1 - lr * wd) - lr * p.grad / (p.grad.abs() + 1e-8) for p in ps]
    assert rel(a[0], torch.cat([w.detach().flatten() for w in want])) < 1e-12


# ---- the spreadsheet's sheets against torch.optim (exact equivalences) -------------------------
def f64(v):
    return torch.tensor(float(v), dtype=torch.float64)


def _adam_state(m, v):
    # A step count so large that beta**t underflows to 0: torch's bias correction is off exactly.
    return [{"step": f64(1e6), "exp_avg": f64(a), "exp_avg_sq": f64(b)} for a, b in zip(m, v)]


def _sheet_cases():
    """Each exact equivalence: (sheet, its start, the torch optimizer, torch's state), built fresh."""
    seeded, reset = graddesc.reset("momentum", "seeded"), graddesc.reset("momentum")
    adam_reset, s = graddesc.reset("adam"), graddesc.reset("adamw")
    g = 2 * (1 + graddesc.X[0] - graddesc.Y[0])  # the first row's de/db; de/da is x times it
    adamw = dict(lr=s["lr"], betas=(s["beta1"], s["beta2"]), eps=s["eps"], weight_decay=s["wd"])

    def sgd(lr=1e-4, **kw):
        return lambda ps: torch.optim.SGD(ps, lr=lr, **kw)

    def damped(beta):  # m <- beta m + (1 - beta) g is torch's buffer with dampening = beta
        return sgd(momentum=beta, dampening=beta)

    def adam(ps):
        return torch.optim.Adam(ps, lr=1.0, betas=(0.7, 0.9), eps=0.0)

    return {
        "basic": ("basic", None, sgd(), None),
        # Seeded, both buffers start at the first gradient g.
        "momentum-0.9-seeded": ("momentum", {**seeded, "beta1": 0.9}, damped(0.9), None),
        "momentum-0.5-seeded": ("momentum", {**seeded, "beta1": 0.5}, damped(0.5), None),
        # From m = 0 the (1 - beta) weighting is a learning rate (1 - beta) times smaller.
        "momentum-from-zero": ("momentum", {**seeded, "m": np.zeros(2)}, sgd(1e-4 * (1 - 0.9), momentum=0.9),
                               [{"momentum_buffer": f64(0)} for _ in "ba"]),
        "momentum-from-reset": ("momentum", None, damped(0.9), [{"momentum_buffer": f64(m)} for m in reset["m"]]),
        "adam-seeded": ("adam", graddesc.reset("adam", "seeded"), adam,
                        _adam_state((g, graddesc.X[0] * g), (g * g, (graddesc.X[0] * g) ** 2))),
        "adam-from-reset": ("adam", None, adam, _adam_state(adam_reset["m"], adam_reset["v"])),
        "adamw-torch": ("adamw", None, lambda ps: torch.optim.AdamW(ps, **adamw), None),
        "adamw-lesson5": ("adamw", None, lambda ps: optim.AdamW(ps, **adamw), None),
    }  # fmt: skip


@pytest.mark.parametrize("case", list(_sheet_cases()))
def test_sheet_is_torch(case):
    name, start, make, state = _sheet_cases()[case]
    sheet = graddesc.run(name, 5, start)[0][["new_a", "new_b"]].to_numpy()
    assert rel(torch_rows(make, 5, state), sheet) < 1e-10
