"""The version, in a module of its own so that any layer can name it without importing the
public package (``rflint/__init__``), which sits above all of them."""

__version__ = "0.1.0"
