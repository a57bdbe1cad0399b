"""Op semantics: the one table of what each op does to a receptive field, and its handlers."""
