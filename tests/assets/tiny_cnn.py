"""A small valid CNN for load / CLI tests: stem 7x7/2 without padding, so inputs below 7 px fail."""

from torch import nn


class TinyCNN(nn.Module):
    def __init__(self, num_classes: int = 10, width: int = 8) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, width, 7, stride=2)
        self.conv = nn.Conv2d(width, width, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x):
        x = self.conv(self.stem(x).relu()).relu()
        return self.fc(self.pool(x).flatten(1))


def build_model(num_classes: int = 10, width: int = 8) -> nn.Module:
    return TinyCNN(num_classes=num_classes, width=width)


instance = TinyCNN()
