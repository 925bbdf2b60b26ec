#!/usr/bin/env python
"""gradtx against optax: run the benchmark from a source checkout.

    python benchmarks/bench.py                      # CPU, -> benchmarks/results.json
    python benchmarks/bench.py --quick              # a smoke run on a tiny tree
    python benchmarks/bench.py --target tpu-v5e     # TPU v5e, compiled here
                                                    # -> benchmarks/results_tpu.json

The code is ``gradtx._src.tools.bench`` (it ships with the package as
``gradtx bench``); this script only runs the checkout's copy and writes its
results next to itself. ``--help`` lists every option; README.md explains
the figures.
"""

import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
# The checkout's gradtx, not an installed one.
sys.path.insert(0, str(HERE.parent))

from gradtx._src.tools.bench import command  # noqa: E402


def main(argv=None) -> int:
  return command.main(argv, prog="benchmarks/bench.py", default_dir=HERE)


if __name__ == "__main__":
  raise SystemExit(main())
