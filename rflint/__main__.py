"""``python -m rflint``: the same as the ``rflint`` console script."""

from rflint.cli import main

main()
