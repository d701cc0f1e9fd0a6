"""``python -m distillwatch`` is the ``distillwatch`` command."""

from distillwatch.cli import main

main()
