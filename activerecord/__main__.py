"""``python -m activerecord``: the same as the ``activerecord`` command."""

from .cli import main

main()
