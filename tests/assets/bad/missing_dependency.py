import rflint_nonexistent_dependency  # noqa: F401


def build_model():
    raise AssertionError("never reached")
