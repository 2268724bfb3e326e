"""Temperature scaling (Guo et al. 2017): one scalar T that divides the logits, fitted on a validation split.

It changes no prediction (the arg-max of logits / T is the arg-max of the logits), only how confident
the probabilities are, so a 0.9 means right about nine times in ten on data like the validation split.
"""

from __future__ import annotations

import torch
from torch import Tensor


def fit_temperature(logits: Tensor, labels: Tensor, steps: int = 200) -> float:
    """The T > 0 that minimises the negative log-likelihood of `labels` under softmax(logits / T)."""
    if len(logits) == 0:
        raise ValueError("cannot fit a temperature on an empty validation split")
    log_t = torch.zeros(1, requires_grad=True)  # T = exp(log_t) stays positive
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=steps, line_search_fn="strong_wolfe")
    logits, labels = logits.detach().float(), labels.long()

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.exp().clamp(0.05, 20.0))
