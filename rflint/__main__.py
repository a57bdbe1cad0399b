"""``python -m rflint`` and the ``rflint`` console script.

The CLI's own dependencies (typer, rich, jsonschema) are imported here under a guard: if one of
them is broken, the run ends with exit code 2 and one line naming it (a traceback only with
``--verbose``), not with Python's traceback and exit code 1.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Console-script entry point."""
    try:
        from rflint.cli import load

        app = load(sys.argv[1:])  # imports typer, rich and the invoked command's module
    except Exception as exc:  # noqa: BLE001 - a dependency of the CLI fails to import
        from rflint.engine.dependencies import broken_install, error_line

        if "--verbose" in sys.argv or "-v" in sys.argv:
            import traceback

            traceback.print_exception(exc, file=sys.stderr)
        found = broken_install(exc)
        message, hint = found or (f"rflint cannot start: {type(exc).__name__}: {exc}", "reinstall rflint")
        sys.stderr.write(error_line(message, hint) + "\n")
        raise SystemExit(2) from None
    app()


if __name__ == "__main__":
    main()
