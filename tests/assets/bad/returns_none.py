from torch import nn


def get_model():
    nn.Conv2d(3, 8, 3)  # forgot to return it
