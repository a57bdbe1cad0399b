"""Published receptive-field numbers used as test oracles, with their source.

[B.2] = ../shared/reference/receptive-field-prior-art.md, section B.2: rfa-toolbox 1.7.0 on
torchvision 0.29.1 models (the brief's [COMPUTED] table).
"""

# [B.2] rfa-toolbox on torchvision resnet18: qualname -> (r_min, r_max, input r_min)
RESNET18_TABLE = {
    "conv1": (7, 7, 1),
    "maxpool": (11, 11, 7),
    "layer1.0.conv1": (19, 19, 11),
    "layer1.0.conv2": (27, 27, 19),
    "layer1.1.conv1": (19, 35, 11),
    "layer1.1.conv2": (27, 43, 19),
    "layer2.0.conv1": (19, 51, 11),
    "layer2.0.conv2": (35, 67, 19),
    "layer2.0.downsample.0": (11, 43, 11),
    "layer2.1.conv1": (27, 83, 11),
    "layer2.1.conv2": (43, 99, 27),
    "layer3.0.conv1": (27, 115, 11),
    "layer3.0.conv2": (59, 147, 27),
    "layer3.1.conv1": (43, 179, 11),
    "layer3.1.conv2": (75, 211, 43),
    "layer4.0.conv1": (43, 243, 11),
    "layer4.0.conv2": (107, 307, 43),
    "layer4.1.conv1": (75, 371, 11),
    "layer4.1.conv2": (139, 435, 75),
}
