"""Grid Atlas core: area hierarchy, loaders, the exact point-in-grid join, counts and roll-ups.

Nothing in this package imports Flask: the CLI, the web layer, the wall and the exporter all
call the same functions here.
"""

__version__ = "0.1.0"
