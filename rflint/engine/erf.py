"""The empirical effective receptive field (Luo et al., "Understanding the Effective Receptive
Field in Deep Convolutional Neural Networks", NeurIPS 2016).

The theoretical field (``r_max``) says which input pixels *can* reach a unit; the effective field
says how much each one actually does. Luo et al. back-propagate a gradient of 1 from the centre
unit of a layer's output and look at ``|d out / d input|``: for a stack of ``n`` linear 3x3
convolutions it is the ``n``-fold convolution of a box, a Gaussian whose standard deviation grows
like ``sqrt(n)`` while the theoretical field grows like ``n``, so the effective field is an
ever smaller fraction of the theoretical one.

What is measured here:

- the gradient of the sum over channels of the centre unit of the chosen layer's output with
  respect to the input, ``|grad|`` summed over input channels and averaged over random inputs
  (standard normal) or over images from a folder;
- the **ERF size**: the side of the smallest square centred on the gradient's centroid that holds
  95 % of the gradient mass (clipped at the image border);
- a Gaussian **sigma per axis**: the maximum-likelihood Gaussian fit to the marginal of the
  gradient mass along that axis (which is its standard deviation);
- the theoretical ``r_max`` of the same layer from rflint's analysis, and the ratios.

The model is run for real, so it must be materialised: a model built on the meta device gets
fresh tensors on the chosen device and each module's ``reset_parameters()``; weights come only
from a ``state_dict`` file read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import fx, nn

from rflint.rf.algebra import analyse
from rflint.rf.display import display
from rflint.engine.erf_inputs import image_batches, image_files, random_batches
from rflint.errors import ErfError, UsageError, first_line
from rflint.ir import INF, Analysis, LayerRF

MASS = 0.95


@dataclass(frozen=True)
class ErfResult:
    """One measurement. ``grad_map`` is the mean ``|grad|`` per input pixel, normalised to sum 1."""

    model: str
    layer: str  # qualname of the measured layer
    node: str  # its graph node name
    input_shape: tuple[int, ...]  # (batch of one, channels, *spatial)
    output_size: tuple[int, ...]  # the layer's spatial output size
    centre: tuple[int, ...]  # the output unit whose gradient is taken
    samples: int
    inputs: str  # "random normal" or "N images from DIR"
    device: str
    grad_map: torch.Tensor  # float64, spatial shape, sums to 1
    peak: tuple[int, ...]
    centroid: tuple[float, ...]
    side: int  # side of the centred square holding MASS of the gradient
    sigma: tuple[float, ...]  # Gaussian fit per axis
    r_min: tuple[float | int | None, ...]
    r_max: tuple[float | int | None, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ratio(self) -> tuple[float | None, ...]:
        """ERF size over theoretical r_max, per axis (None where r_max is infinite)."""
        return tuple(None if r in (None, 0) else self.side / r for r in self.r_max)

    @property
    def sigma_ratio(self) -> tuple[float | None, ...]:
        return tuple(None if r in (None, 0) else s / r for s, r in zip(self.sigma, self.r_max))

    def to_dict(self, include_map: bool = True) -> dict[str, object]:
        """JSON-friendly numbers."""
        d: dict[str, object] = {
            "schema_version": 1,
            "model": self.model,
            "layer": self.layer,
            "node": self.node,
            "input_shape": list(self.input_shape),
            "output_size": list(self.output_size),
            "centre_unit": list(self.centre),
            "samples": self.samples,
            "inputs": self.inputs,
            "device": self.device,
            "mass_fraction": MASS,
            "erf_side": self.side,
            "erf_sigma": [round(s, 4) for s in self.sigma],
            "peak": list(self.peak),
            "centroid": [round(c, 3) for c in self.centroid],
            "r_min": list(self.r_min),
            "r_max": list(self.r_max),
            "ratio_side_to_r_max": [None if r is None else round(r, 4) for r in self.ratio],
            "ratio_sigma_to_r_max": [None if r is None else round(r, 5) for r in self.sigma_ratio],
            "profiles": [[round(v, 7) for v in p] for p in marginals(self.grad_map)],
            "notes": list(self.notes),
        }
        if include_map:
            d["map"] = [[round(v, 8) for v in row] for row in _as_2d(self.grad_map).tolist()]
        return d


# ---------------------------------------------------------------------------------------------
# statistics of a gradient map (pure tensor maths, tested on known distributions)


def marginals(grad_map: torch.Tensor) -> list[list[float]]:
    """The mass along each axis (the other axes summed out)."""
    dims = range(grad_map.dim())
    return [grad_map.sum(dim=tuple(d for d in dims if d != a)).tolist() for a in dims]


def _as_2d(t: torch.Tensor) -> torch.Tensor:
    return t if t.dim() == 2 else t.reshape(1, -1) if t.dim() == 1 else t.reshape(t.shape[0], -1)


def centroid(grad_map: torch.Tensor) -> tuple[float, ...]:
    out = []
    for p in marginals(grad_map):
        total = sum(p) or 1.0
        out.append(sum(i * v for i, v in enumerate(p)) / total)
    return tuple(out)


def gaussian_sigma(grad_map: torch.Tensor) -> tuple[float, ...]:
    """Per axis, the sigma of the maximum-likelihood Gaussian fit to the marginal mass (the
    marginal's standard deviation)."""
    out = []
    for p in marginals(grad_map):
        total = sum(p) or 1.0
        mu = sum(i * v for i, v in enumerate(p)) / total
        out.append(math.sqrt(sum((i - mu) ** 2 * v for i, v in enumerate(p)) / total))
    return tuple(out)


def square_mass(grad_map: torch.Tensor, centre: Sequence[int], half: int) -> float:
    """Mass inside the square (cube) of side ``2 * half + 1`` centred on ``centre``."""
    index = tuple(slice(max(0, c - half), c + half + 1) for c in centre)
    return float(grad_map[index].sum())


def square_side(grad_map: torch.Tensor, mass: float = MASS) -> int:
    """Side of the smallest odd square centred on the centroid holding ``mass`` of the total."""
    total = float(grad_map.sum())
    if total <= 0:
        return 0
    c = [min(max(int(round(x)), 0), n - 1) for x, n in zip(centroid(grad_map), grad_map.shape)]
    lo, hi = 0, max(grad_map.shape)  # the square of half-side hi covers everything
    while lo < hi:
        mid = (lo + hi) // 2
        if square_mass(grad_map, c, mid) >= mass * total * (1 - 1e-12):
            hi = mid
        else:
            lo = mid + 1
    return 2 * lo + 1


def peak(grad_map: torch.Tensor) -> tuple[int, ...]:
    flat = int(torch.argmax(grad_map))
    out = []
    for n in reversed(grad_map.shape):
        out.append(flat % n)
        flat //= n
    return tuple(reversed(out))


# ---------------------------------------------------------------------------------------------
# preparing the model


def resolve_device(device: str) -> torch.device:
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise UsageError(f"unknown --device {device!r}: use cpu or cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(
            "--device cuda was given but CUDA is not available to torch",
            hint="run on a machine with a CUDA GPU and a CUDA build of torch, or use --device cpu",
        )
    return torch.device(device)


def _on_meta(module: nn.Module) -> bool:
    return any(t.is_meta for t in list(module.parameters()) + list(module.buffers()))


@torch.no_grad()
def materialise(module: nn.Module, device: torch.device) -> list[str]:
    """Give a meta-device model real tensors on ``device`` with a random initialisation.

    Every module with ``reset_parameters()`` re-initialises its own tensors (batch norm resets
    its running statistics too). Tensors no such module owns would hold uninitialised memory, so
    floating-point parameters get N(0, 0.02) and buffers zeros; the returned notes say so.
    """
    notes: list[str] = []
    if not _on_meta(module):
        module.to(device)
        return notes
    notes.append(
        "random initialisation from each module's reset_parameters() (the model was built on the "
        "meta device, so its own init scheme did not run); pass --weights for a trained model"
    )
    module.to_empty(device=device)
    covered: set[int] = set()
    for sub in module.modules():
        reset = getattr(sub, "reset_parameters", None)
        if callable(reset):
            try:
                reset()
            except Exception as exc:  # noqa: BLE001 - a broken reset falls back below
                notes.append(f"{type(sub).__name__}.reset_parameters failed: {exc}")
                continue
            covered.update(id(t) for t in sub.parameters(recurse=False))
            covered.update(id(t) for t in sub.buffers(recurse=False))
    fallback = 0
    for name, t in list(module.named_parameters()) + list(module.named_buffers()):
        if id(t) in covered:
            continue
        fallback += 1
        if t.is_floating_point() and isinstance(t, nn.Parameter):
            t.normal_(0.0, 0.02)
        elif "running_var" in name:
            t.fill_(1)
        else:
            t.zero_()
    if fallback:
        notes.append(
            f"{fallback} tensors have no reset_parameters(): parameters drawn from N(0, 0.02), "
            "buffers zeroed"
        )
    return notes


def load_weights(module: nn.Module, path: str | Path) -> None:
    """Load a ``state_dict`` saved with ``torch.save``; only plain tensors are unpickled."""
    path = Path(path)
    if not path.is_file():
        raise ErfError(f"weights file {str(path)!r} not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle refusal, corrupt file, ...
        first = first_line(exc)
        raise ErfError(
            f"cannot read weights from {str(path)!r} with torch.load(weights_only=True): {first}",
            hint="save the weights with torch.save(model.state_dict(), path); whole pickled models are not loaded",
        ) from exc
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model", "model_state_dict"):
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                obj = inner
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ErfError(f"{str(path)!r} does not hold a state_dict (a mapping of names to tensors)")
    state = dict(obj)
    if state and all(k.startswith("module.") for k in state):  # saved from DataParallel
        state = {k[len("module."):]: v for k, v in state.items()}
    result = module.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        parts = []
        if result.missing_keys:
            parts.append(f"{len(result.missing_keys)} missing (e.g. {result.missing_keys[0]})")
        if result.unexpected_keys:
            parts.append(f"{len(result.unexpected_keys)} unexpected (e.g. {result.unexpected_keys[0]})")
        raise ErfError(
            f"weights in {str(path)!r} do not match the model: " + ", ".join(parts),
            hint="check --model-kwargs (e.g. num_classes) and that the file belongs to this architecture",
        )


def choose_layer(analysis: Analysis, layer: str | None = None) -> LayerRF:
    """The layer named ``layer`` (qualname or node name), or by default the last layer with a
    spatial output and a finite field: the one feeding global pooling in a classifier."""
    ndim = analysis.graph.ndim

    def spatial(lrf: LayerRF) -> bool:
        size = lrf.layer.out_size
        return bool(size) and len(size) == ndim and all(a.r_max != INF for a in lrf.axes)

    if layer is None:
        candidates = [lrf for lrf in analysis.layers if spatial(lrf) and lrf.layer.kind.value != "input"]
        if not candidates:
            raise ErfError("the model has no layer with a spatial output and a finite receptive field")
        return candidates[-1]
    for lrf in analysis.layers:
        if layer in (lrf.layer.qualname, lrf.layer.name):
            if not spatial(lrf):
                raise ErfError(
                    f"layer {layer!r} has no spatial output with a finite receptive field "
                    f"(feature map {lrf.layer.out_size}, r_max {[display(x) for x in lrf.r_max]})",
                    hint="pick a convolution or pooling layer before global pooling",
                )
            return lrf
    names = [lrf.layer.qualname for lrf in analysis.layers]
    close = difflib.get_close_matches(layer, names, n=3)
    raise ErfError(
        f"no layer named {layer!r}",
        hint=("did you mean " + ", ".join(close) + "? ") if close else "see `rflint inspect` for layer names",
    )


def truncate(gm: fx.GraphModule, node_name: str) -> fx.GraphModule:
    """A GraphModule that runs ``gm`` up to node ``node_name`` and returns its output."""
    graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    target = None
    for node in gm.graph.nodes:
        if node.op == "output":
            break
        env[node] = graph.node_copy(node, lambda n: env[n])
        if node.name == node_name:
            target = node
            break
    if target is None:
        raise ErfError(f"node {node_name!r} not found when re-tracing the model")
    graph.output(env[target])
    sub = fx.GraphModule(gm, graph)
    sub.graph.eliminate_dead_code()
    sub.recompile()
    return sub


# ---------------------------------------------------------------------------------------------
# the measurement


def gradient_map(
    sub: nn.Module, batches: Iterator[torch.Tensor], device: torch.device
) -> tuple[torch.Tensor, tuple[int, ...], tuple[int, ...], int]:
    """Mean over samples of ``|d centre / d input|`` summed over input channels.

    Returns (map, output spatial size, centre unit, number of samples).
    """
    total: torch.Tensor | None = None
    count = 0
    out_size: tuple[int, ...] = ()
    centre: tuple[int, ...] = ()
    for x in batches:
        x = x.to(device).requires_grad_(True)
        out = sub(x)
        if not isinstance(out, torch.Tensor) or out.dim() != x.dim():
            raise ErfError(
                f"the layer's output is not a feature map of the input's rank (got "
                f"{type(out).__name__}{'' if not isinstance(out, torch.Tensor) else ' ' + str(tuple(out.shape))})"
            )
        out_size = tuple(int(s) for s in out.shape[2:])
        centre = tuple(s // 2 for s in out_size)
        unit = out[(slice(None), slice(None), *centre)].sum()  # samples are independent in eval mode
        (grad,) = torch.autograd.grad(unit, x)
        g = grad.detach().abs().sum(dim=1).sum(dim=0).double().cpu()
        total = g if total is None else total + g
        count += x.shape[0]
    if total is None or count == 0:
        raise ErfError("no input samples")
    return total / count, out_size, centre, count


def measure_erf(
    module: nn.Module,
    *,
    input_size: Sequence[int] | None = None,
    input_shape: Sequence[int] | None = None,
    layer: str | None = None,
    samples: int = 32,
    batch_size: int = 8,
    weights: str | Path | None = None,
    images: str | Path | None = None,
    device: str = "cpu",
    seed: int = 0,
    leaf_modules: Sequence[str] = (),
    name: str = "model",
    analysis: Analysis | None = None,
) -> ErfResult:
    """Measure the effective receptive field of one layer of ``module``.

    Args:
        module: the model, on the meta device (it is materialised) or on the CPU.
        input_size / input_shape: as for ``rflint check``; the shape wins.
        layer: qualname (or graph node name) of the layer; default: the last spatial layer.
        samples: number of random inputs (or at most this many images).
        batch_size: inputs per forward/backward pass.
        weights: a state_dict file; without it the model keeps its random initialisation.
        images: a folder of images to use instead of random inputs.
        device: "cpu" or "cuda".
        seed: seed for the random inputs and the random initialisation.
        analysis: rflint's analysis of the model at this input (computed if not given).
    """
    from rflint.frontend.fx import trace_graph
    from rflint.frontend.geometry import infer_input_shape

    if samples < 1:
        raise UsageError("--samples must be at least 1")
    dev = resolve_device(device)
    shape = tuple(int(s) for s in input_shape) if input_shape else infer_input_shape(module, input_size)
    if analysis is None:
        graph = trace_graph(module, input_shape=shape, name=name, leaf_modules=leaf_modules)
        analysis = analyse(graph)
    lrf = choose_layer(analysis, layer)
    sub, notes = _runnable(module, lrf.layer.name, dev, weights, seed, leaf_modules)
    batches, source = _batches(images, shape, samples, batch_size, seed)
    grad_map, out_size, centre, count = gradient_map(sub, batches, dev)
    total = float(grad_map.sum())
    if total > 0:
        grad_map = grad_map / total
    else:
        notes.append("the gradient is zero everywhere: the centre unit does not depend on the input")
    r_max = tuple(display(x) for x in lrf.r_max)
    if any(r is not None and r > n for r, n in zip(r_max, shape[2:])):
        notes.append("the theoretical field is larger than the input: the ERF is clipped at the border")
    return ErfResult(
        model=name,
        layer=lrf.layer.qualname,
        node=lrf.layer.name,
        input_shape=shape,
        output_size=out_size,
        centre=centre,
        samples=count,
        inputs=source,
        device=str(dev),
        grad_map=grad_map,
        peak=peak(grad_map),
        centroid=centroid(grad_map),
        side=square_side(grad_map) if total > 0 else 0,
        sigma=gaussian_sigma(grad_map),
        r_min=tuple(display(x) for x in lrf.r_min),
        r_max=r_max,
        notes=tuple(notes),
    )


def _batches(images: str | Path | None, shape: tuple[int, ...], samples: int, batch_size: int, seed: int) -> tuple[Iterator[torch.Tensor], str]:
    """The inputs to average over, and how to name them in the result."""
    if images is None:
        return random_batches(shape, samples, batch_size, seed), "random normal"
    files = image_files(images)[:samples]
    return image_batches(files, shape, batch_size), f"{len(files)} images from {images}"


def _runnable(
    module: nn.Module, node: str, dev: torch.device, weights: str | Path | None, seed: int, leaf_modules: Sequence[str]
) -> tuple[fx.GraphModule, list[str]]:
    """The model materialised on ``dev`` (seeded; weights loaded if given) and cut after
    ``node``, in eval mode, with the notes materialising made."""
    from rflint.frontend.tracer import trace

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        notes = materialise(module, dev)
    if weights is not None:
        load_weights(module, weights)
        module.to(dev)
    module.eval()
    return truncate(trace(module, leaf_modules), node).to(dev).eval(), notes
