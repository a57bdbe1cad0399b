def build_model():
    return build_model()
