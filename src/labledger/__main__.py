"""``python -m labledger``: the ``labledger`` command."""

from labledger.cli.entry import main

main()
