"""The ``labledger`` command: thin commands that parse, call the core or client, render."""
