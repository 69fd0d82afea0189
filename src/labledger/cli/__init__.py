"""The ``labledger`` command. Thin commands: parse, call the core or the client, render with Rich."""
