"""A meta-device copy of a module the caller built (the Python API's ``analyze(model)``).

rflint needs shapes, never weight values; a module built on the CPU would make the shape run
compute every convolution for real. The command line moves its own builds to meta in place;
a module the caller holds must stay as it is, so it is copied with its tensors replaced.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

import torch
from torch import nn


def meta_copy(module: nn.Module) -> nn.Module:
    """A copy of ``module`` whose parameters and buffers live on the meta device, so that the
    shape run never computes a real convolution (a 3-D U-Net at 96^3: a minute on the CPU).
    The caller's module is left as it is: the copy shares nothing with it but plain attributes
    (tensors that are neither parameters nor buffers are copied as they are, as ``.to`` leaves
    them). A module that cannot be deep-copied is returned itself."""
    if all(t.is_meta for t in itertools.chain(module.parameters(), module.buffers())):
        return module
    memo: dict[int, Any] = {}
    for tensor in itertools.chain(module.parameters(), module.buffers()):
        if not tensor.is_meta and id(tensor) not in memo:
            meta = torch.empty_like(tensor, device="meta")
            memo[id(tensor)] = nn.Parameter(meta, requires_grad=tensor.requires_grad) if isinstance(tensor, nn.Parameter) else meta
    try:
        return copy.deepcopy(module, memo)
    except Exception:  # noqa: BLE001 - user objects (locks, generators): trace the original
        return module
