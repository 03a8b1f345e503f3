"""``python -m geo``: the command line. The only package of the core that may import every other
one (and the bench, lazily, for ``python -m geo bench``)."""
