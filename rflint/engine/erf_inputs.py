"""The inputs an ERF is averaged over: random normal batches, or images from a folder resized
to the model's input and normalised as the model expects (ImageNet statistics for RGB)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch import nn

from rflint.errors import ErfError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def image_files(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise ErfError(f"--images {str(folder)!r} is not a folder")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ErfError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {str(folder)!r}")
    return files


def _read_image(path: Path) -> torch.Tensor:
    """(3, H, W) float in [0, 1], read with pillow, else with torchvision.io."""
    try:
        from PIL import Image
    except ImportError:
        Image = None
    if Image is not None:
        try:
            with Image.open(path) as im:
                rgb = im.convert("RGB")
                w, h = rgb.size
                data = torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to fix
            raise ErfError(f"cannot read image {str(path)!r}: {exc}") from exc
        return data.reshape(h, w, 3).permute(2, 0, 1).float() / 255.0
    try:
        from torchvision.io import ImageReadMode, decode_image
    except ImportError:
        raise ErfError("reading --images needs pillow or torchvision", hint="pip install pillow") from None
    try:
        return decode_image(str(path), mode=ImageReadMode.RGB).float() / 255.0
    except Exception as exc:  # noqa: BLE001
        raise ErfError(f"cannot read image {str(path)!r}: {exc}") from exc


def image_batches(files: Sequence[Path], shape: tuple[int, ...], batch: int) -> Iterator[torch.Tensor]:
    """Images resized to the input size; 3 channels are normalised with ImageNet statistics,
    1 channel is the grey level."""
    channels, size = shape[1], shape[2:]
    if len(size) != 2:
        raise ErfError("--images works for 2-d inputs only")
    if channels not in (1, 3):
        raise ErfError(f"--images needs a model with 1 or 3 input channels, not {channels}")
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    for i in range(0, len(files), batch):
        imgs = []
        for path in files[i : i + batch]:
            img = _read_image(path)
            img = nn.functional.interpolate(img[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0]
            img = (img - mean) / std if channels == 3 else img.mean(0, keepdim=True)
            imgs.append(img)
        yield torch.stack(imgs)


def random_batches(shape: tuple[int, ...], samples: int, batch: int, seed: int) -> Iterator[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    done = 0
    while done < samples:
        n = min(batch, samples - done)
        yield torch.randn((n, *shape[1:]), generator=gen)
        done += n
