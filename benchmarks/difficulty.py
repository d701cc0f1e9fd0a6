"""Print, per simple signal, the weakest campaign's median against the strongest heavy user.

Usage:
    python -m benchmarks.difficulty /tmp/worlds/standard-1
"""

from __future__ import annotations

import sys
from pathlib import Path

from distillwatch.evaluate import load_labels
from distillwatch.evaluate.difficulty import separability, simple_signals


def main() -> None:
    world = Path(sys.argv[1])
    print("| signal | weakest campaign (median) | strongest heavy user | one threshold works? |")
    print("|---|---|---|---|")
    for r in separability(load_labels(world), simple_signals(world)):
        print(f"| {r.signal} | {r.lowest_campaign} ({r.lowest_campaign_median:.3f}) | "
              f"{r.highest_heavy_population} ({r.highest_heavy_user:.3f}) | "
              f"{'yes' if r.separable else 'no'} |")


if __name__ == "__main__":
    main()
