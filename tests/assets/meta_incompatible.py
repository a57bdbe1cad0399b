"""A model whose constructor needs real tensors, so rflint must retry it off the meta device.
``devices`` records where each construction attempt ran."""

from torch import nn

devices: list[str] = []


class NeedsRealTensors(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        devices.append(self.conv.weight.device.type)
        if self.conv.weight.is_meta:
            raise NotImplementedError("this constructor reads weight values")

    def forward(self, x):
        return self.conv(x)


def build_model() -> nn.Module:
    return NeedsRealTensors()
