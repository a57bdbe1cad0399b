"""The input geometry to analyse a built model at: ``(batch, channels, *spatial)``.

The user gives the spatial size (``--input-size``) or the whole shape (``--input-shape``). The
channels, and the number of spatial axes, are taken from the model where it says: an
``example_input`` / ``input_shape`` attribute, timm's ``pretrained_cfg["input_size"]``, the
3 channels of every torchvision image model, an ``in_channels`` / ``in_chans`` attribute; then
from the first layer that reads the input unchanged; and when all of that fails to run, the
common channel counts (3, then 1). An ``in_channels`` attribute that disagrees with the first
convolution is tried after it: ``_make_layer`` helpers reuse the attribute as a running count. The engine tries these in order, and an error names every
shape tried: a space-to-depth stem (TResNet: 48 channels into its first convolution, 3 into the
model) must not end the analysis on a wrong guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from torch import nn

from rflint.errors import ShapeError
from rflint.frontend.tracer import trace
from rflint.frontend.common import check_input_shape


@dataclass(frozen=True)
class Geometry:
    """One input shape to try, and where it comes from (shown when it was a guess)."""

    shape: tuple[int, ...]
    source: str

    @property
    def weak(self) -> bool:
        """A guess the user should hear about (not stated by the user or the model)."""
        return self.source.startswith("a common")


def _spatial(input_size: Sequence[int], ndim: int, where: str) -> tuple[int, ...]:
    size = tuple(int(s) for s in input_size)
    size = size * ndim if len(size) == 1 else size
    if len(size) != ndim:
        raise ShapeError(
            f"--input-size has {len(size)} axes but {where} is {ndim}-d",
            hint=f"give one size or {ndim} sizes, e.g. --input-size {'x'.join(['224'] * ndim)}",
        )
    return size


def _declared_shape(module: nn.Module) -> tuple[tuple[int, ...], str] | None:
    """A full input shape the model states: ``example_input`` (a tensor), ``input_shape``."""
    example = getattr(module, "example_input", None)
    shape = getattr(example, "shape", None)
    if shape is not None and len(shape) >= 3:
        return tuple(int(s) for s in shape), "the model's example_input"
    declared = getattr(module, "input_shape", None)
    if isinstance(declared, (tuple, list)) and len(declared) >= 3 and all(isinstance(s, int) for s in declared):
        return tuple(declared), "the model's input_shape"
    return None


def _declared_channels(module: nn.Module) -> tuple[int, tuple[int, ...] | None, str] | None:
    """(channels, spatial size or None, source) the model states."""
    cfg = getattr(module, "pretrained_cfg", None)
    if isinstance(cfg, dict) and isinstance(cfg.get("input_size"), (tuple, list)) and len(cfg["input_size"]) >= 2:
        c, *spatial = cfg["input_size"]
        return int(c), tuple(int(s) for s in spatial), "timm's pretrained_cfg"
    if _is_torchvision_model(module):
        return 3, None, "torchvision image models take RGB"
    for attr in ("in_channels", "in_chans", "num_channels", "input_channels"):
        value = getattr(module, attr, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value, None, f"the model's {attr}"
    return None


def _doubtful(stated: tuple[int, tuple[int, ...] | None, str], first: nn.Module | None) -> bool:
    """An ``in_channels``-style attribute that disagrees with the first convolution: many
    models use ``self.in_channels`` as the running channel count of ``_make_layer`` (ResNet,
    ShuffleNetV2 copies end at 464), so after construction it says nothing about the input.
    The first convolution is then tried first, the attribute second."""
    return stated[2].startswith("the model's ") and first is not None and first.in_channels != stated[0]


def _is_torchvision_model(module: nn.Module) -> bool:
    """A whole torchvision model (``ResNet``, ``FCN``, ``VideoResNet``), not one of its blocks."""
    cls = type(module)
    if not cls.__module__.startswith("torchvision.models"):
        return False
    import torchvision.models as tvm

    namespaces = (tvm, getattr(tvm, "segmentation", None), getattr(tvm, "video", None), getattr(tvm, "detection", None))
    return any(ns is not None and getattr(ns, cls.__name__, None) is cls for ns in namespaces)


def _first_conv(module: nn.Module) -> nn.Module | None:
    return next((m for m in module.modules() if isinstance(m, nn.modules.conv._ConvNd)), None)


def _first_reader(module: nn.Module) -> tuple[int, int, str] | None:
    """(channels, spatial axes, name) of the layer that reads the model input unchanged: the
    first convolution or normalisation called on the placeholder in the traced graph."""
    try:
        gm = trace(module)
    except Exception:  # noqa: BLE001 - best effort: the tracer reports its own failure later
        return None
    modules = dict(gm.named_modules())
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if not placeholders:
        return None
    for user in placeholders[0].users:
        m = modules.get(str(user.target)) if user.op == "call_module" else None
        if isinstance(m, nn.modules.conv._ConvNd) and not isinstance(m, nn.modules.conv._ConvTransposeNd):
            return m.in_channels, len(m.kernel_size), str(user.target)
        if isinstance(m, nn.modules.batchnorm._NormBase):
            return m.num_features, 2, str(user.target)
    return None


def candidates(module: nn.Module, input_size: Sequence[int] | None, input_shape: Sequence[int] | None) -> list[Geometry]:
    """The input shapes to try, best first (see the module docstring)."""
    if input_shape is not None:
        return [Geometry(check_input_shape(tuple(int(s) for s in input_shape)), "given")]
    declared = _declared_shape(module)
    if declared is not None and input_size is None:
        return [Geometry(declared[0], declared[1])]
    stated = _declared_channels(module)
    if input_size is None and stated is not None and stated[1] is not None:
        input_size = stated[1]
    if input_size is None:
        raise ShapeError("no input size given", hint="pass --input-size N (e.g. 224) or --input-shape 1,3,224,224")
    first = _first_conv(module)
    ndim = len(first.kernel_size) if first is not None else (len(input_size) if len(input_size) > 1 else 2)
    if declared is not None:
        ndim = len(declared[0]) - 2
    out: list[Geometry] = []

    def add(channels: int, source: str, axes: int = ndim) -> None:
        shape = check_input_shape((1, channels, *_spatial(input_size, axes, "the model")))  # type: ignore[arg-type]
        if all(g.shape != shape for g in out):
            out.append(Geometry(shape, source))

    if declared is not None:
        add(declared[0][1], declared[1])
    if stated is not None and _doubtful(stated, first):  # a counter the constructor moved on
        add(first.in_channels, f"the first convolution ({type(first).__name__})")  # type: ignore[union-attr]
    if stated is not None:
        add(stated[0], stated[2])
    reader = _first_reader(module) if stated is None else None
    if reader is not None:
        add(reader[0], f"the first layer reading the input, {reader[2]}", reader[1])
    elif first is not None and stated is None:
        add(first.in_channels, f"the first convolution ({type(first).__name__})")
    for channels in (3, 1):
        add(channels, "a common channel count")
    return out


def describe(tried: Sequence[tuple[Geometry, BaseException]]) -> str:
    """``(1, 48, 224, 224) [the first convolution]: RuntimeError ...; (1, 3, ...) ...``."""
    return "; ".join(f"{g.shape} [{g.source}]: {_reason(e)[:160]}" for g, e in tried)


def _reason(exc: BaseException) -> str:
    """The error without the shape it names (the list says the shape); other messages whole
    (``the model's forward raised at FILE:LINE: ...`` keeps its line)."""
    text = str(exc)
    return text.split(": ", 1)[-1] if text.startswith("the model does not run on input shape") else text


def validate(shape: tuple[int, ...]) -> tuple[int, ...]:
    if any(s <= 0 for s in shape):
        raise ShapeError(f"input shape {shape} has a non-positive size")
    if len(shape) < 3:
        raise ShapeError(f"input shape {shape} has no spatial axis", hint="give (batch, channels, *spatial), e.g. 1,3,224,224")
    return shape


def infer_input_shape(module: nn.Module, input_size: Sequence[int] | None) -> tuple[int, ...]:
    """The best input shape for ``input_size`` (:func:`candidates`; the engine also tries the
    others when this one does not run)."""
    return candidates(module, input_size, None)[0].shape


def input_shape_for(module: nn.Module, input_size: Sequence[int] | None, input_shape: Sequence[int] | None) -> tuple[int, ...]:
    """The shape a frontend runs the model on: ``input_shape`` as given, else the best guess
    for ``input_size``; validated either way (every tracer takes its shape from here)."""
    shape = tuple(int(s) for s in input_shape) if input_shape else infer_input_shape(module, input_size)
    return validate(shape)


__all__ = ["Geometry", "candidates", "describe", "infer_input_shape", "input_shape_for", "validate"]
