"""rflint: a static architecture linter for unproductive layers in CNNs.

Finds layers whose input already sees the whole image (Richter et al., 2021, "Should You Go
Deeper?") and architectures that are not refined for their training resolution (Richter & Pal,
2022), without training and without real weights.
"""

__version__ = "0.1.0"
