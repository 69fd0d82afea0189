"""Local runs: run config, the four phases, git/environment capture, the query index.

Import from the submodules (:mod:`.session`, :mod:`.workspace`, ...); this package imports
nothing itself so that light commands stay fast.
"""
