"""Where models come from: target strings, files, packages and model zoos."""
