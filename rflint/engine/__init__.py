"""The pipeline: load, trace, analyse and check a model; the result cache and the worker processes."""
