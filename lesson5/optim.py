"""PyTorch's optimizers written from scratch, a few lines each.

Notebooks 02 and 05.

Same arguments, defaults, state names and update rules as the `torch.optim` namesakes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch.optim import Optimizer


def _finite_at_least_0(value: object) -> bool:
    try:
        return math.isfinite(value) and value >= 0  # type: ignore[arg-type, operator]
    except TypeError:  # not a number at all ("0.1", None)
        return False


def _defaults(args: dict) -> dict:
    """A constructor's own arguments (its `locals()`), as torch.optim's `defaults`."""
    return {k: v for k, v in args.items() if k not in ("self", "params", "__class__")}


class _Scratch(Optimizer):
    """Loops over the parameters that have gradients and hands each to `update`."""

    def __init__(self, params, defaults: dict):
        # NaN and inf pass torch.optim's `lr < 0` checks and then turn every weight into NaN.
        for key, value in defaults.items():  # every number but the betas (the flags are bools)
            if key != "betas" and not isinstance(value, bool) and not _finite_at_least_0(value):
                why = "it must be a finite number >= 0"
                raise ValueError(f"{type(self).__name__}: invalid {key}={value!r}; {why}")
        for beta in defaults.get("betas", ()):
            if not (_finite_at_least_0(beta) and beta < 1.0):
                raise ValueError(
                    f"{type(self).__name__}: invalid beta {beta!r} in betas={defaults['betas']!r}; "
                    "each must be in [0, 1)"
                )
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        """One update of every parameter from its `.grad`; `closure` re-evaluates the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = -p.grad if group.get("maximize", False) else p.grad
                state = self.state[p]
                state["step"] = state.get("step", 0) + 1
                self.update(p, g, state, group)
        return loss

    def update(self, p: torch.Tensor, g: torch.Tensor, state: dict, group: dict) -> None:
        raise NotImplementedError


class SGD(_Scratch):
    """p -= lr * buf, buf = momentum * buf + (1 - dampening) * g, g at first; Nesterov looks ahead."""

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, _defaults(locals()))

    def update(self, p, g, state, group):
        g = g.add(p, alpha=group["weight_decay"])  # L2 in the loss, as a gradient term
        mu = group["momentum"]
        if mu:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = g.clone()
            else:
                state["momentum_buffer"].mul_(mu).add_(g, alpha=1 - group["dampening"])
            buf = state["momentum_buffer"]
            g = g.add(buf, alpha=mu) if group["nesterov"] else buf
        p.add_(g, alpha=-group["lr"])


class Adagrad(_Scratch):
    """p -= lr_t * g / (sqrt(sum of g^2 so far) + eps), lr_t = lr / (1 + (t - 1) * lr_decay)."""

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
    ):
        super().__init__(params, _defaults(locals()))

    def update(self, p, g, state, group):
        g = g.add(p, alpha=group["weight_decay"])
        if "sum" not in state:
            state["sum"] = torch.full_like(p, group["initial_accumulator_value"])
        state["sum"].addcmul_(g, g)
        lr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        p.addcdiv_(g, state["sum"].sqrt().add_(group["eps"]), value=-lr)


class RMSprop(_Scratch):
    """v = alpha v + (1 - alpha) g^2; p -= lr * g / (sqrt(v - mean(g)^2 if centered) + eps)."""

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        *,
        maximize: bool = False,
    ):
        super().__init__(params, _defaults(locals()))

    def update(self, p, g, state, group):
        g = g.add(p, alpha=group["weight_decay"])
        alpha = group["alpha"]
        if "square_avg" not in state:
            state["square_avg"] = torch.zeros_like(p)
            if group["centered"]:
                state["grad_avg"] = torch.zeros_like(p)
            if group["momentum"] > 0:
                state["momentum_buffer"] = torch.zeros_like(p)
        v = state["square_avg"].mul_(alpha).addcmul_(g, g, value=1 - alpha)
        if group["centered"]:  # divide by the standard deviation instead of the root mean square
            mean = state["grad_avg"].lerp_(g, 1 - alpha)
            v = v.addcmul(mean, mean, value=-1)
        denom = v.sqrt().add_(group["eps"])
        if group["momentum"] > 0:
            buf = state["momentum_buffer"].mul_(group["momentum"]).addcdiv_(g, denom)
            p.add_(buf, alpha=-group["lr"])
        else:
            p.addcdiv_(g, denom, value=-group["lr"])


class Adam(_Scratch):
    """m, v = EWMAs of g and g^2 from zero; p -= lr * m_hat / (sqrt(v_hat) + eps)."""

    decoupled = False

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ):
        super().__init__(params, _defaults(locals()))

    def update(self, p, g, state, group):
        lr, wd, (b1, b2) = group["lr"], group["weight_decay"], group["betas"]
        if self.decoupled:
            p.mul_(1 - lr * wd)  # AdamW: shrink the weights directly, outside the averages
        else:
            g = g.add(p, alpha=wd)  # Adam: L2 in the loss, so it flows through m and v
        if "exp_avg" not in state:
            state["exp_avg"], state["exp_avg_sq"] = torch.zeros_like(p), torch.zeros_like(p)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = torch.zeros_like(p)
        t = state["step"]
        m = state["exp_avg"].lerp_(g, 1 - b1)
        v = state["exp_avg_sq"].mul_(b2).addcmul_(g, g, value=1 - b2)
        if group["amsgrad"]:  # never let the denominator shrink
            v = torch.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
        denom = (v.sqrt() / (1 - b2**t) ** 0.5).add_(group["eps"])
        p.addcdiv_(m, denom, value=-lr / (1 - b1**t))


class AdamW(Adam):
    """Adam with decoupled weight decay: p *= 1 - lr * weight_decay, then Adam's step, no decay."""

    decoupled = True

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)


def l2_penalty(params: Iterable[torch.Tensor], weight_decay: float) -> torch.Tensor:
    """weight_decay / 2 * sum of squared weights; in a loss, its gradient is weight_decay * p."""
    return weight_decay / 2 * sum((p**2).sum() for p in params)
