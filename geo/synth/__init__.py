"""Synthesis of the demo city: towns, villages and grids inside the real district outlines,
checkpoints and dated event points. Deterministic for a given seed."""
