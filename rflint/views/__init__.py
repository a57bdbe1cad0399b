"""Renderers of the per-command views (inspect, suggest, erf, diff), as opposed to check's formats."""
