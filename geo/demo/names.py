"""Chinese names for synthetic towns, villages and checkpoints. Deterministic for a seed."""

from __future__ import annotations

import numpy as np

_FIRST = "东西南北青白金石桃梅竹松柳溪河湖山岭塘桥港湾浦岙田林花丰安宁和新永长福兴盛鸣凤龙云瑞华茂清明"
_SECOND = "溪桥塘浦湾岙港山岭林园田洋头门口池泉岗坞堰埠墩峰阳亭庄家湖河洲渡江"


class NamePool:
    """Hands out two-character place names, never the same twice within one pool."""

    def __init__(self, rng: np.random.Generator, taken=()):
        pairs = [a + b for a in _FIRST for b in _SECOND if a != b]
        rng.shuffle(pairs)
        self._names = [p for p in pairs if p not in set(taken)]
        self._i = 0

    def next(self) -> str:
        """Return the next unused name."""
        if self._i >= len(self._names):
            raise RuntimeError("name pool exhausted")
        self._i += 1
        return self._names[self._i - 1]
