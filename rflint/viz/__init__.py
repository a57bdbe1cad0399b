"""Pictures of the analysis: the graph as SVG (pure Python), the growth plot and the ERF heatmap
(matplotlib, the ``plot`` extra) and a self-contained HTML report.

Only :mod:`rflint.viz.plot` needs matplotlib; the rest is standard library.
"""
