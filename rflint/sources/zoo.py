"""Model zoos: the libraries whose models a target names by prefix (``torchvision:NAME``,
``timm:NAME``). One entry per zoo in :data:`ZOOS`: its names (what a glob ranges over) and how
to build one of them without downloading weights. Importing this module imports no zoo: each
library is imported by the entry that needs it, so deciding what to check costs no torch.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from rflint.errors import TargetError

#: what building a zoo model needs: a thunk that builds it and the entry point whose source
#: lines locate its layers
Build = tuple[Callable[[], Any], Callable[..., Any]]


@dataclass(frozen=True)
class Zoo:
    """A model library addressed by ``prefix:NAME``."""

    prefix: str
    names: Callable[[], list[str]]
    resolve: Callable[[str, dict], Build]
    list_hint: str


def import_optional(module: str, package: str, extra: str) -> ModuleType:
    """Import an optional library, or say which package (and rflint extra) installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise TargetError(
            f"{package} is not installed ({exc})",
            hint=f"pip install {package}  (or pip install 'rflint[{extra}]')",
        ) from exc


def _unknown_name(zoo: Zoo, name: str, known: list[str]) -> TargetError:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    tail = f"; did you mean {', '.join(close)}?" if close else ""
    return TargetError(f"unknown {zoo.prefix} model {name!r}{tail}", hint=zoo.list_hint)


def _torchvision_names() -> list[str]:
    """torchvision's classification model names (what a ``torchvision:*`` glob ranges over)."""
    tvm = import_optional("torchvision.models", "torchvision", "vision")
    return list(tvm.list_models(module=tvm))


def _torchvision_build(name: str, kwargs: dict) -> Build:
    tvm = import_optional("torchvision.models", "torchvision", "vision")
    known = list(tvm.list_models())
    if name not in known:
        raise _unknown_name(ZOOS["torchvision"], name, known)
    builder = tvm.get_model_builder(name)
    # no download, ever: segmentation / detection builders also fetch a pretrained backbone
    defaults: dict[str, Any] = {"weights": None}
    if "weights_backbone" in inspect.signature(builder).parameters:
        defaults["weights_backbone"] = None
    return (lambda: builder(**{**defaults, **kwargs})), builder


def _timm_names() -> list[str]:
    """timm's registered architecture names."""
    return list(import_optional("timm", "timm", "timm").list_models())


def _timm_build(name: str, kwargs: dict) -> Build:
    timm = import_optional("timm", "timm", "timm")
    arch = timm.models.split_model_name_tag(name)[0]
    if not timm.is_model(arch):
        raise _unknown_name(ZOOS["timm"], name, list(timm.list_models()))
    return (lambda: timm.create_model(name, pretrained=False, **kwargs)), timm.models.model_entrypoint(arch)


ZOOS: dict[str, Zoo] = {
    "torchvision": Zoo(
        "torchvision", _torchvision_names, _torchvision_build,
        "list the names with: python -c \"import torchvision; print(torchvision.models.list_models())\"",
    ),
    "timm": Zoo("timm", _timm_names, _timm_build, "list the names with: python -c \"import timm; print(timm.list_models())\""),
}


def zoo_of(target: str) -> tuple[Zoo, str] | None:
    """The zoo a target names and the model name after its prefix, or None for any other target."""
    prefix, sep, name = target.partition(":")
    zoo = ZOOS.get(prefix) if sep else None
    return (zoo, name) if zoo else None


def is_zoo_target(target: str) -> bool:
    return zoo_of(target) is not None
