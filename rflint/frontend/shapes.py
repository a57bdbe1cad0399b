"""Output shapes by arithmetic, for the ops that are slow on the meta device.

Why: the shape run executes the traced graph on meta tensors, and most meta kernels are Python
(``torch._meta_registrations``, ``torch._refs``): a ``Linear`` on a 3-D input costs about
1.8 ms there, a broadcasting ``add`` 0.7 ms, a conv 0.4 ms, torchvision's shifted-window
attention 10 ms, and the first of them imports sympy through
``torch.fx.experimental.symbolic_shapes`` (about 0.45 s). The meta run was the largest step of
a check. The ops below account for most of that time on CNNs and vision transformers, and their
output shapes are a line of arithmetic each.

Contract: a rule returns the op's output as an empty meta tensor of the exact shape and dtype
torch would give, or ``None`` when anything is unusual (a shape that does not fit, a dtype that
would be promoted, an option the rule does not cover); then the op runs on the meta device as
before, so an error still comes from torch with torch's message. Only meta tensors are short
cut: a model built on the CPU runs for real. ``tests/frontend/test_shapes.py`` checks every rule against
the meta kernels over a sweep of configurations.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rflint.rf.sizes import window_length

Rule = Callable[..., "torch.Tensor | None"]

_META = torch.device("meta")


def _is_meta(x: Any) -> bool:
    return isinstance(x, torch.Tensor) and x.device == _META


def _empty(shape: Sequence[int], like: torch.Tensor) -> torch.Tensor | None:
    if any(s < 0 for s in shape):
        return None
    return torch.empty(tuple(shape), dtype=like.dtype, device=_META)


# ---------------------------------------------------------------------------------------------
# windows: conv and pooling


def _tuple(value: Any, n: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


def _window_out(size: int, k: int, s: int, p: int, d: int, ceil: bool) -> int:
    """PyTorch's pooling/conv output length (``pooling_output_shape`` in ATen)."""
    return window_length(size, d * (k - 1) + 1, s, p, ceil)


def _spatial(x: torch.Tensor, n: int) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """(leading dims, spatial dims) of an ``n``-d window op's input: batched or not."""
    if x.dim() not in (n + 1, n + 2):
        return None
    return tuple(x.shape[:-n]), tuple(x.shape[-n:])


def _conv(m: nn.modules.conv._ConvNd, x: torch.Tensor) -> torch.Tensor | None:
    if m.transposed or not x.is_floating_point():
        return None
    n = len(m.kernel_size)
    split = _spatial(x, n)
    if split is None or split[0][-1] != m.in_channels:
        return None
    lead, sizes = split
    if isinstance(m.padding, str):
        if m.padding == "valid":
            pads = (0,) * n
        else:  # "same" (stride 1 only; torch checks that at construction)
            return _empty((*lead[:-1], m.out_channels, *sizes), x)
    else:
        pads = m.padding
    out = [_window_out(sizes[i], m.kernel_size[i], m.stride[i], pads[i], m.dilation[i], False) for i in range(n)]
    if any(o <= 0 for o in out):
        return None
    return _empty((*lead[:-1], m.out_channels, *out), x)


def _pool(m: nn.Module, x: torch.Tensor, n: int) -> torch.Tensor | None:
    split = _spatial(x, n)
    if split is None:
        return None
    lead, sizes = split
    k = _tuple(m.kernel_size, n)
    s = _tuple(m.stride if m.stride is not None else m.kernel_size, n)
    p = _tuple(m.padding, n)
    d = _tuple(getattr(m, "dilation", 1), n)
    if any(2 * p[i] > k[i] for i in range(n)):
        return None  # torch rejects it; let it say so
    out = [_window_out(sizes[i], k[i], s[i], p[i], d[i], m.ceil_mode) for i in range(n)]
    if any(o <= 0 for o in out):
        return None
    return _empty((*lead, *out), x)


def _adaptive(m: nn.Module, x: torch.Tensor, n: int) -> torch.Tensor | None:
    split = _spatial(x, n)
    if split is None:
        return None
    lead, sizes = split
    target = _tuple(m.output_size, n)
    out = [sizes[i] if target[i] is None else target[i] for i in range(n)]
    return _empty((*lead, *out), x)


def _linear(m: nn.Linear, x: torch.Tensor) -> torch.Tensor | None:
    if x.dim() == 0 or x.shape[-1] != m.in_features or not x.is_floating_point():
        return None
    return _empty((*x.shape[:-1], m.out_features), x)


def _attention(m: nn.MultiheadAttention, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, *rest: Any, **kw: Any) -> Any:
    """(output, weights) of ``nn.MultiheadAttention``: the output has the query's shape with
    ``embed_dim`` last; the weights are (N, L, S), or (N, heads, L, S) when not averaged."""
    names = ("key_padding_mask", "need_weights", "attn_mask", "average_attn_weights", "is_causal")
    options = {**dict(zip(names, rest)), **kw}
    if not (_is_meta(key) and _is_meta(value)) or query.dim() not in (2, 3) or key.dim() != query.dim():
        return None
    if (query.shape[-1], key.shape[-1], value.shape[-1]) != (m.embed_dim, m.kdim, m.vdim) or key.shape != value.shape:
        return None
    if not query.is_floating_point():
        return None
    out = _empty(query.shape, query)
    if not options.get("need_weights", True):
        return out, None
    if query.dim() == 2:
        lead, l_len, s_len = (), query.shape[0], key.shape[0]
    elif m.batch_first:
        lead, l_len, s_len = (query.shape[0],), query.shape[1], key.shape[1]
    else:
        lead, l_len, s_len = (query.shape[1],), query.shape[0], key.shape[0]
    heads = () if options.get("average_attn_weights", True) else (m.num_heads,)
    return out, _empty((*lead, *heads, l_len, s_len), query)


_MODULES: tuple[tuple[type, Callable[..., Any]], ...] = (
    (nn.Linear, _linear),
    (nn.modules.conv._ConvNd, _conv),
    (nn.MaxPool1d, lambda m, x: _pool(m, x, 1)),
    (nn.MaxPool2d, lambda m, x: _pool(m, x, 2)),
    (nn.MaxPool3d, lambda m, x: _pool(m, x, 3)),
    (nn.AvgPool1d, lambda m, x: _pool(m, x, 1)),
    (nn.AvgPool2d, lambda m, x: _pool(m, x, 2)),
    (nn.AvgPool3d, lambda m, x: _pool(m, x, 3)),
    (nn.AdaptiveAvgPool1d, lambda m, x: _adaptive(m, x, 1)),
    (nn.AdaptiveAvgPool2d, lambda m, x: _adaptive(m, x, 2)),
    (nn.AdaptiveAvgPool3d, lambda m, x: _adaptive(m, x, 3)),
    (nn.AdaptiveMaxPool1d, lambda m, x: _adaptive(m, x, 1)),
    (nn.AdaptiveMaxPool2d, lambda m, x: _adaptive(m, x, 2)),
    (nn.AdaptiveMaxPool3d, lambda m, x: _adaptive(m, x, 3)),
    (nn.MultiheadAttention, _attention),
)


def has_torch_forward(m: nn.Module) -> bool:
    """``m`` runs torch.nn's own ``forward``: a subclass that overrides it (timm's
    ``Conv2dSame`` pads by the input's size first, a weight-standardised conv...) may change
    the shape the parent class would give."""
    return getattr(type(m).forward, "__module__", "").startswith("torch.nn.")


def module_output(m: nn.Module, args: tuple, kwargs: dict) -> Any:
    """The output of leaf module ``m`` by arithmetic, or None (run it)."""
    if not args or not _is_meta(args[0]) or (kwargs and not isinstance(m, nn.MultiheadAttention)):
        return None
    if not has_torch_forward(m) or getattr(m, "return_indices", False):  # a pool's (values, indices)
        return None
    for cls, rule in _MODULES:
        if isinstance(m, cls):
            try:
                return rule(m, *args, **kwargs)
            except TypeError:  # a call signature the rule does not know: run it
                return None
    return None


# ---------------------------------------------------------------------------------------------
# functions


def _broadcast(a: Sequence[int], b: Sequence[int]) -> tuple[int, ...] | None:
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else 1
        y = b[-i] if i <= len(b) else 1
        if x != y and x != 1 and y != 1:
            return None
        out.append(y if x == 1 else x)
    return tuple(reversed(out))


def _elementwise(a: Any, b: Any, *rest: Any, **kwargs: Any) -> torch.Tensor | None:
    """``a op b`` for two float tensors of one dtype, or a float tensor and a Python number."""
    if rest or kwargs:
        return None
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        if not (_is_meta(a) and _is_meta(b)) or a.dtype != b.dtype or not a.is_floating_point():
            return None
        shape = _broadcast(a.shape, b.shape)
        return None if shape is None else _empty(shape, a)
    tensor, number = (a, b) if isinstance(a, torch.Tensor) else (b, a)
    if _is_meta(tensor) and tensor.is_floating_point() and type(number) in (int, float):
        return _empty(tensor.shape, tensor)
    return None


def _same_shape(x: Any, *rest: Any, **kwargs: Any) -> torch.Tensor | None:
    """Ops whose output has their first argument's shape and dtype (activations, norms,
    dropout, stochastic depth, windowed attention)."""
    if _is_meta(x) and x.is_floating_point():
        return _empty(x.shape, x)
    return None


def _layer_norm(x: Any, normalized_shape: Sequence[int], weight: Any = None, bias: Any = None, eps: float = 1e-5) -> torch.Tensor | None:
    """``F.layer_norm`` keeps the shape, when the normalised dims and the affine parameters fit
    (otherwise torch raises, and must still: a model that does not run is reported as such)."""
    dims = tuple(normalized_shape) if isinstance(normalized_shape, (tuple, list, torch.Size)) else (normalized_shape,)
    if not _is_meta(x) or tuple(x.shape[x.dim() - len(dims):]) != dims or x.dim() < len(dims):
        return None
    if any(p is not None and (not isinstance(p, torch.Tensor) or tuple(p.shape) != dims) for p in (weight, bias)):
        return None
    return _same_shape(x)


def _cat(tensors: Any, dim: int = 0) -> torch.Tensor | None:
    if not isinstance(tensors, (list, tuple)) or not tensors or not all(_is_meta(t) for t in tensors):
        return None
    first = tensors[0]
    if any(t.dtype != first.dtype or t.dim() != first.dim() for t in tensors) or first.dim() == 0:
        return None
    dim = dim % first.dim()
    for t in tensors[1:]:
        if any(t.shape[i] != first.shape[i] for i in range(first.dim()) if i != dim):
            return None
    shape = list(first.shape)
    shape[dim] = sum(t.shape[dim] for t in tensors)
    return _empty(shape, first)


#: library functions the tracers keep whole that keep their input's shape, by module and name
#: (looked up by name so that rflint imports nothing: ``torchvision.ops`` imports dynamo)
_LIBRARY_FUNCTIONS: dict[tuple[str, str], Rule] = {
    ("torchvision.models.swin_transformer", "shifted_window_attention"): _same_shape,
    ("torchvision.models.swin_transformer", "shifted_window_attention_v2"): _same_shape,
    ("torchvision.ops.stochastic_depth", "stochastic_depth"): _same_shape,
}

_FUNCTIONS: dict[Callable, Rule] = {
    **{op: _elementwise for op in (operator.add, operator.sub, operator.mul, operator.truediv, torch.add, torch.sub, torch.mul)},
    **{
        op: _same_shape
        for op in (
            F.relu, F.relu6, F.gelu, F.silu, F.hardswish, F.hardsigmoid, F.sigmoid, F.dropout, torch.relu,
            torch.sigmoid, torch.tanh,
        )
    },
    F.layer_norm: _layer_norm,
    torch.cat: _cat,
    torch.concat: _cat,
}


def function_output(fn: Callable, args: tuple, kwargs: dict) -> Any:
    """The output of ``fn(*args, **kwargs)`` by arithmetic, or None (run it)."""
    try:
        rule = _FUNCTIONS.get(fn)
    except TypeError:  # an unhashable callable
        return None
    if rule is None:
        rule = _LIBRARY_FUNCTIONS.get((getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)))
    if rule is None:
        return None
    try:
        return rule(*args, **kwargs)
    except TypeError:
        return None
