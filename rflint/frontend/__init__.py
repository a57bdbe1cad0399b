"""Frontends: turn a model (torch.fx, torch.export, ONNX) into an :class:`rflint.ir.Graph`."""
