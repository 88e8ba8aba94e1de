"""lesson5.optim against torch.optim on random float64 problems, and the spreadsheet against torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lesson5 import graddesc, optim
from lesson5.graddesc import torch_rows

STEPS = 100
SEEDS = (0, 1, 2)
CASES = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.5, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, maximize=True)),
    ("Adagrad", dict()),
    (
        "Adagrad",
        dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.5, eps=1e-6),
    ),
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


def problem(seed: int):
    """A small random non-convex regression (two layers with tanh), float64, two parameter groups."""
    g = torch.Generator().manual_seed(seed)
    x, y = (
        torch.randn(32, 4, generator=g, dtype=torch.float64),
        torch.randn(32, 1, generator=g, dtype=torch.float64),
    )
    init = [
        torch.randn(4, 8, generator=g, dtype=torch.float64),
        torch.randn(8, generator=g, dtype=torch.float64),
        torch.randn(8, 1, generator=g, dtype=torch.float64),
    ]

    def loss(ps):
        w1, b1, w2 = ps
        return ((torch.tanh(x @ w1 + b1) @ w2 - y) ** 2).mean()

    return init, loss


def problems(seeds=SEEDS):
    """Several independent random problems as one: the summed loss keeps each seed's gradients apart.

    (Every optimizer here is elementwise, so one optimizer over all of them is the same as one per
    seed, at a third of the Python overhead per step.)
    """
    parts = [problem(seed) for seed in seeds]
    init = [p for ps, _ in parts for p in ps]
    sizes = [len(ps) for ps, _ in parts]

    def loss(ps):
        total, k = 0, 0
        for (_, f), n in zip(parts, sizes):
            total = total + f(ps[k : k + n])
            k += n
        return total

    return init, loss


def trajectory(make, init, loss, steps=STEPS, extra_loss=None):
    ps = [p.clone().requires_grad_() for p in init]
    opt = make(ps)
    out = []
    for _ in range(steps):
        opt.zero_grad()
        value = loss(ps) + (extra_loss(ps) if extra_loss else 0)
        value.backward()
        opt.step()
        out.append(torch.cat([p.detach().flatten() for p in ps]).clone())
    return torch.stack(out)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a - b).abs() / b.abs().clamp_min(1e-300)).max())


@pytest.mark.parametrize("name,kw", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_matches_torch(name, kw):
    init, loss = problems()
    ours = trajectory(lambda ps: getattr(optim, name)(ps, **kw), init, loss)
    theirs = trajectory(lambda ps: getattr(torch.optim, name)(ps, **kw), init, loss)
    assert (ours - init_flat(init)).abs().max() > 1e-3, "the parameters must actually move"
    assert rel(ours, theirs) < 1e-10


def init_flat(init):
    return torch.cat([p.flatten() for p in init])


def test_param_groups_and_defaults_match_torch():
    import inspect

    for name in ("SGD", "Adagrad", "RMSprop", "Adam", "AdamW"):
        ours = inspect.signature(getattr(optim, name)).parameters
        theirs = inspect.signature(getattr(torch.optim, name)).parameters
        for arg, p in ours.items():
            assert theirs[arg].default == p.default, (name, arg)
    init, loss = problem(3)

    def groups(ps, mod):
        return mod.SGD([{"params": ps[:2]}, {"params": ps[2:], "lr": 0.2}], lr=0.05, momentum=0.9)

    assert (
        rel(
            trajectory(lambda ps: groups(ps, optim), init, loss),
            trajectory(lambda ps: groups(ps, torch.optim), init, loss),
        )
        < 1e-10
    )


def test_bad_arguments_are_refused():
    p = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(ValueError, match="lr"):
        optim.SGD(p, lr=-1)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD(p, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="beta"):
        optim.Adam(p, betas=(0.9, 1.0))


def test_adam_weight_decay_is_l2_in_the_loss_but_adamw_is_not():
    init, loss = problems()
    wd = 0.1
    coupled = trajectory(lambda ps: optim.Adam(ps, lr=0.01, weight_decay=wd), init, loss)
    l2 = trajectory(
        lambda ps: optim.Adam(ps, lr=0.01),
        init,
        loss,
        extra_loss=lambda ps: optim.l2_penalty(ps, wd),
    )
    decoupled = trajectory(lambda ps: optim.AdamW(ps, lr=0.01, weight_decay=wd), init, loss)
    assert rel(coupled, l2) < 1e-10
    assert rel(decoupled, l2) > 1e-3  # decoupling changes the path, not only the rounding


def test_adamw_is_decay_then_adam_step():
    # One AdamW step equals shrinking by (1 - lr*wd) and then an undecayed Adam step.
    init, loss = problem(4)
    lr, wd = 0.01, 0.3
    a = trajectory(lambda ps: optim.AdamW(ps, lr=lr, weight_decay=wd), init, loss, steps=1)
    shrunk = [p * (1 - lr * wd) for p in init]
    ps = [p.clone().requires_grad_() for p in init]
    loss(ps).backward()  # the gradient at the unshrunk point, as AdamW takes it
    for p, s in zip(ps, shrunk):
        g = p.grad
        m, v = 0.1 * g, 0.001 * g * g
        p.data = s - lr * (m / 0.1) / ((v / 0.001).sqrt() + 1e-8)
    assert rel(a[0], init_flat(ps).detach()) < 1e-12


# ---- the spreadsheet's sheets against torch.optim (exact equivalences) -------------------------


def sheet_rows(name, epochs, state=None):
    table, _ = graddesc.run(name, epochs, state)
    return table[["new_a", "new_b"]].to_numpy()


def rel_np(a, b):
    return float(np.max(np.abs(a - b) / np.abs(b)))


def test_basic_sheet_is_torch_sgd():
    assert (
        rel_np(sheet_rows("basic", 5), torch_rows(lambda ps: torch.optim.SGD(ps, lr=1e-4), 5))
        < 1e-10
    )


@pytest.mark.parametrize("beta", [0.9, 0.5])
def test_momentum_sheet_is_torch_sgd_with_dampening_equal_to_momentum(beta):
    # m <- beta m + (1 - beta) g is torch's buffer with dampening = beta; both buffers start at g.
    state = {**graddesc.reset("momentum", "seeded"), "beta1": beta}
    sheet = sheet_rows("momentum", 5, state)
    ours = torch_rows(lambda ps: torch.optim.SGD(ps, lr=1e-4, momentum=beta, dampening=beta), 5)
    assert rel_np(sheet, ours) < 1e-10


def test_momentum_sheet_from_zero_is_undamped_torch_with_scaled_lr():
    # Started from m = 0 the (1 - beta) weighting is just a learning rate (1 - beta) times smaller.
    state = {**graddesc.reset("momentum", "seeded"), "m": np.zeros(2)}
    zeros = [{"momentum_buffer": torch.tensor(0.0, dtype=torch.float64)} for _ in "ba"]
    lr, beta = 1e-4, 0.9
    ours = torch_rows(lambda ps: torch.optim.SGD(ps, lr=lr * (1 - beta), momentum=beta), 5, zeros)
    assert rel_np(sheet_rows("momentum", 5, state), ours) < 1e-10


def test_adam_sheet_is_torch_adam_without_bias_correction_or_eps():
    # Seeded averages (m = g, v = g^2 at the first row) and a step count so large that
    # beta**t underflows to 0, switching torch's bias correction off exactly.
    def seeded(ps):
        return torch.optim.Adam(ps, lr=1.0, betas=(0.7, 0.9), eps=0.0)

    x0, y0 = graddesc.X[0], graddesc.Y[0]
    g_b = 2 * (1 + x0 - y0)
    st = [
        {
            "step": torch.tensor(1e6, dtype=torch.float64),
            "exp_avg": torch.tensor(g, dtype=torch.float64),
            "exp_avg_sq": torch.tensor(g * g, dtype=torch.float64),
        }
        for g in (g_b, x0 * g_b)
    ]
    assert (
        rel_np(sheet_rows("adam", 5, graddesc.reset("adam", "seeded")), torch_rows(seeded, 5, st))
        < 1e-10
    )


def test_adamw_sheet_is_torch_adamw():
    s = graddesc.reset("adamw")
    ours = torch_rows(
        lambda ps: torch.optim.AdamW(
            ps, lr=s["lr"], betas=(s["beta1"], s["beta2"]), eps=s["eps"], weight_decay=s["wd"]
        ),
        5,
    )
    assert rel_np(sheet_rows("adamw", 5), ours) < 1e-10
    ours_scratch = torch_rows(
        lambda ps: optim.AdamW(
            ps, lr=s["lr"], betas=(s["beta1"], s["beta2"]), eps=s["eps"], weight_decay=s["wd"]
        ),
        5,
    )
    assert rel_np(sheet_rows("adamw", 5), ours_scratch) < 1e-10
