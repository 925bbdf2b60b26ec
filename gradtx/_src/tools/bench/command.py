"""The benchmark's command line, shared by ``gradtx bench`` and
``benchmarks/bench.py``.

This module imports neither jax nor optax: ``--help`` and a bad option are
answered without them, and a missing optax is reported in one line.
"""

from __future__ import annotations

import argparse
import pathlib
from typing import Optional

DESCRIPTION = (
    "gradtx against optax on real parameter trees (GPT-2 small, ResNet-50, "
    "2000 small leaves). --target cpu (the default) times the jitted, "
    "donating step on this machine: step time, compile time, optimizer-state "
    "memory and an Adam memory-bandwidth bound. --target tpu-v5e compiles "
    "the same steps for a TPU v5e without one (needs the bench-tpu extra: "
    "pip install \"gradtx[bench-tpu]\") and reports compile time, kernels, "
    "bytes accessed per step and temporary memory, plus GPT-2 sharded on a "
    "2x2 mesh with the collectives in its step.")

TARGETS = ("cpu", "tpu-v5e")
TREE_NAMES = ("gpt2", "resnet50", "many_small", "tiny")
DEFAULT_TREES = ("gpt2", "resnet50", "many_small")
OPTIMIZER_NAMES = ("adam", "adamw", "sgd", "amsgrad", "radam", "adabound",
                   "adam_bf16", "adam_mu_bf16", "adam_flat")
BOUND = "bound"  # gradtx.adam against the hand-fused flat-buffer Adam
ALL_OPTIMIZERS = OPTIMIZER_NAMES + (BOUND,)
# Rows the default run leaves out (name them with --optimizers to run them):
# bfloat16 moments save the same bytes per parameter on every tree, and on
# the 2000-leaf tree these rows would add some of the run's slowest compiles.
DEFAULT_SKIP = {("many_small", "adam_bf16"), ("many_small", "adam_mu_bf16")}

# (warm-up steps per library, timed pairs) per tree. Chosen so the default
# run fits in 5 minutes on 2 CPU cores; compile time dominates for
# many_small, step time for gpt2.
TREE_REPEATS = {
    "gpt2": (2, 8),
    "resnet50": (3, 20),
    "many_small": (3, 20),
    "tiny": (3, 20),
}
QUICK_REPEATS = (1, 3)
# --quick's rows unless --optimizers names others: the common step, the
# flattened layout and the bandwidth bound.
QUICK_OPTIMIZERS = ("adam", "adam_flat", BOUND)
# Compiles per executable for --target tpu-v5e (the median is reported).
COMPILE_REPEATS = 3
# Where results go unless --out says: the working directory's gradtx-bench/
# for ``gradtx bench``; benchmarks/bench.py writes next to itself.
DEFAULT_DIR = pathlib.Path("gradtx-bench")
RESULTS_FILE = {"cpu": "results.json", "tpu-v5e": "results_tpu.json"}


def _positive_int(text: str) -> int:
  try:
    v = int(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
  if v < 1:
    raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
  return v


def _names(allowed, what):
  """An argparse type: comma-separated names out of ``allowed``."""

  def parse(text: str) -> list:
    out = [x for x in text.split(",") if x]
    bad = [x for x in out if x not in allowed]
    if bad:
      raise argparse.ArgumentTypeError(
          f"unknown {what} {', '.join(bad)}; choose from "
          f"{', '.join(allowed)}")
    return out

  return parse


def add_options(p: argparse.ArgumentParser,
                default_dir: pathlib.Path = DEFAULT_DIR) -> None:
  """Adds every benchmark option to ``p``."""
  reps = ", ".join(f"{k} {v[1]}" for k, v in TREE_REPEATS.items())
  warms = ", ".join(f"{k} {v[0]}" for k, v in TREE_REPEATS.items())
  p.add_argument("--target", choices=TARGETS, default="cpu",
                 help="cpu: time the steps here; tpu-v5e: compile them for a "
                 "TPU v5e that this machine does not have (default: cpu)")
  p.add_argument("--trees", nargs="+", type=_names(TREE_NAMES, "tree"),
                 default=None, metavar="TREE",
                 help=f"any of {' '.join(TREE_NAMES)} (default: "
                 f"{' '.join(DEFAULT_TREES)}; with --quick: tiny)")
  p.add_argument("--optimizers", nargs="+",
                 type=_names(ALL_OPTIMIZERS, "optimizer"), default=None,
                 metavar="OPT",
                 help=f"any of {' '.join(ALL_OPTIMIZERS)} (default: all but "
                 "the two bf16 rows on many_small; 'bound' is gradtx.adam "
                 "against a hand-fused flat-buffer Adam)")
  p.add_argument("--repeats", type=_positive_int, default=None, metavar="N",
                 help=f"cpu: timed interleaved pairs per row (default per "
                 f"tree: {reps}; with --quick: {QUICK_REPEATS[1]})")
  p.add_argument("--warmup", type=_positive_int, default=None, metavar="N",
                 help=f"cpu: untimed steps per library before timing "
                 f"(default per tree: {warms}; with --quick: "
                 f"{QUICK_REPEATS[0]})")
  p.add_argument("--compile-workers", type=_positive_int, default=None,
                 metavar="N",
                 help="cpu: XLA compiles run side by side, N at a time "
                 "(default: the usable cores, at most 4; 1: one at a time)")
  p.add_argument("--compile-repeats", type=_positive_int, default=None,
                 metavar="N",
                 help=f"tpu-v5e: compiles per executable, the median is "
                 f"reported (default: {COMPILE_REPEATS}; with --quick: 1)")
  p.add_argument("--quick", action="store_true",
                 help="a smoke run in seconds: the tiny tree and the rows "
                 f"{' '.join(QUICK_OPTIMIZERS)} unless --trees and "
                 f"--optimizers say otherwise, warm-up {QUICK_REPEATS[0]} and "
                 f"{QUICK_REPEATS[1]} timed pairs (cpu), one compile per "
                 "executable and no sharded row (tpu-v5e)")
  p.add_argument("--out", default=None, metavar="PATH",
                 help=f"the JSON results (default: {default_dir}/"
                 f"{RESULTS_FILE['cpu']}, or {RESULTS_FILE['tpu-v5e']} for "
                 "--target tpu-v5e); the markdown table is printed")


def parser(prog: Optional[str] = None,
           default_dir: pathlib.Path = DEFAULT_DIR) -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
  add_options(p, default_dir)
  return p


class MissingDependency(Exception):
  """The benchmark cannot run here: one line that says what to install."""


def flat(values: Optional[list]) -> Optional[list]:
  """The names of a ``nargs="+"`` option whose items are lists."""
  if values is None:
    return None
  return [x for v in values for x in v]


def run(args: argparse.Namespace,
        default_dir: pathlib.Path = DEFAULT_DIR) -> int:
  """Runs the benchmark the parsed ``args`` (from :func:`add_options`) ask
  for. Raises :class:`MissingDependency` if optax (or, for a TPU target,
  libtpu) is not installed."""
  try:
    import optax  # noqa: F401
  except ImportError:
    raise MissingDependency(
        "the benchmark compares gradtx with optax, which is not installed: "
        "pip install \"gradtx[bench]\" (or optax==0.2.8)") from None
  args.trees = flat(args.trees) or (["tiny"] if args.quick
                                    else list(DEFAULT_TREES))
  args.optimizers = flat(args.optimizers) or (list(QUICK_OPTIMIZERS)
                                              if args.quick else None)
  out = args.out or str(default_dir / RESULTS_FILE[args.target])
  args.out = out
  if args.target == "cpu":
    from gradtx._src.tools.bench import cpu
    return cpu.run(args)
  from gradtx._src.tools.bench import tpu
  return tpu.run(args)


def main(argv=None, prog: Optional[str] = None,
         default_dir: pathlib.Path = DEFAULT_DIR) -> int:
  p = parser(prog, default_dir)
  args = p.parse_args(argv)
  try:
    return run(args, default_dir)
  except MissingDependency as e:
    p.exit(2, f"{p.prog}: error: {e}\n")
