"""The training loop's reported loss: an exponentially weighted moving average with debiasing.

Notebook 02.
"""

from __future__ import annotations


class EWMA:
    """avg = beta*avg + (1-beta)*x, read as avg / (1 - beta**n): early values not pulled to 0."""

    def __init__(self, beta: float = 0.98):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"beta must be in [0, 1), got {beta}")
        self.beta, self.avg, self.n = beta, 0.0, 0

    def update(self, x: float) -> float:
        """Fold in one value and return the debiased average so far."""
        self.n += 1
        self.avg = self.beta * self.avg + (1 - self.beta) * float(x)
        return self.value

    @property
    def value(self) -> float:
        """The debiased average (nan before any update)."""
        return self.avg / (1 - self.beta**self.n) if self.n else float("nan")
