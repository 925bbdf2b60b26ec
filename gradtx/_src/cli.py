"""The ``gradtx`` command: ``race``, ``lr-find``, ``bench`` and ``list``.

``race`` and ``lr-find`` train a small Flax CNN on scikit-learn's digits
(8x8 images, shipped with scikit-learn: no download). They need the
``examples`` extra: ``pip install "gradtx[examples]"``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import pathlib
import sys
import time
from typing import Any, Callable

import gradtx

# name -> (factory of the learning rate, default learning rate, description)
OPTIMIZERS: dict[str, tuple[Callable[[float], Any], float, str]] = {
    "sgd": (lambda lr: gradtx.sgd(lr, momentum=0.9), 0.05,
            "SGD with heavy-ball momentum (Polyak 1964)"),
    "nesterov": (lambda lr: gradtx.sgd(lr, momentum=0.9, nesterov=True), 0.05,
                 "SGD with Nesterov momentum (Sutskever et al. 2013)"),
    "adagrad": (lambda lr: gradtx.adagrad(lr), 0.05,
                "Adagrad (Duchi, Hazan & Singer 2011)"),
    "rmsprop": (lambda lr: gradtx.rmsprop(lr), 1e-3, "RMSProp (Hinton 2012)"),
    "adadelta": (lambda lr: gradtx.adadelta(lr), 1.0,
                 "Adadelta (Zeiler 2012)"),
    "adam": (lambda lr: gradtx.adam(lr), 3e-3, "Adam (Kingma & Ba 2015)"),
    "adamw": (lambda lr: gradtx.adamw(lr, weight_decay=1e-2), 3e-3,
              "AdamW, decoupled weight decay (Loshchilov & Hutter 2019)"),
    "nadam": (lambda lr: gradtx.nadam(lr), 3e-3, "Nadam (Dozat 2016)"),
    "adamax": (lambda lr: gradtx.adamax(lr), 3e-3,
               "Adamax (Kingma & Ba 2015)"),
    "amsgrad": (lambda lr: gradtx.amsgrad(lr), 3e-3,
                "AMSGrad (Reddi, Kale & Kumar 2018)"),
    "radam": (lambda lr: gradtx.radam(lr), 3e-3,
              "RAdam, rectified Adam (Liu et al. 2020)"),
    "adabound": (lambda lr: gradtx.adabound(lr, final_lr=0.05), 3e-3,
                 "AdaBound (Luo et al. 2019)"),
    "amsbound": (lambda lr: gradtx.amsbound(lr, final_lr=0.05), 3e-3,
                 "AMSBound (Luo et al. 2019)"),
    "ranger": (lambda lr: gradtx.ranger(lr), 3e-3,
               "Ranger: Lookahead over RAdam (Zhang et al. 2019)"),
    "swats": (lambda lr: gradtx.swats(lr), 3e-3,
              "SWATS, Adam then SGD (Keskar & Socher 2017)"),
    "rprop": (lambda lr: gradtx.rprop(lr), 1e-3,
              "Rprop, full-batch (Riedmiller & Braun 1993)"),
}
DEFAULT_RACE = ["sgd", "adam", "amsgrad", "adabound", "radam", "ranger",
                "swats", "adamw"]


class UsageError(Exception):
  """A bad command line: reported in one line, exit status 2."""


def _need_examples():
  try:
    import flax.linen  # noqa: F401
    import sklearn.datasets  # noqa: F401
  except ImportError as e:
    raise UsageError(
        f"this command needs the examples extra ({e.name} is missing): "
        f"pip install \"gradtx[examples]\"") from None


def _digits(seed: int):
  import numpy as np
  from sklearn.datasets import load_digits
  x, y = load_digits(return_X_y=True)
  x = (x / 16.0).astype(np.float32).reshape(-1, 8, 8, 1)
  perm = np.random.default_rng(seed).permutation(len(x))
  x, y = x[perm], y[perm].astype(np.int32)
  n_test = 360
  return (x[n_test:], y[n_test:]), (x[:n_test], y[:n_test])


def _model():
  import flax.linen as nn

  class CNN(nn.Module):
    @nn.compact
    def __call__(self, x):
      x = nn.relu(nn.Conv(16, (3, 3))(x))
      x = nn.relu(nn.Conv(32, (3, 3), strides=(2, 2))(x))
      x = x.reshape((x.shape[0], -1))
      x = nn.relu(nn.Dense(64)(x))
      return nn.Dense(10)(x)

  return CNN()


def _batches(train, steps: int, batch: int, seed: int):
  import numpy as np
  x, y = train
  rng = np.random.default_rng(seed + 1)
  idx = np.stack([rng.choice(len(x), batch, replace=False)
                  for _ in range(steps)])
  return x[idx], y[idx]


def _loss_fn(model):
  import jax
  import jax.numpy as jnp

  def loss(params, x, y):
    logits = model.apply(params, x)
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

  return loss


def _progress(name: str, done: int, total: int, width: int = 30) -> None:
  filled = int(width * done / max(total, 1))
  sys.stderr.write(f"\r  {name:9s} [{'#' * filled}{'.' * (width - filled)}]"
                   f" {done}/{total}")
  if done >= total:
    sys.stderr.write("\n")
  sys.stderr.flush()


def race(args: argparse.Namespace) -> int:
  """Trains the CNN with each optimizer; prints and writes the results."""
  _need_examples()
  import jax
  import jax.numpy as jnp
  import numpy as np

  names = args.optimizers or DEFAULT_RACE
  unknown = [n for n in names if n not in OPTIMIZERS]
  if unknown:
    raise UsageError(f"unknown optimizer(s) {unknown}; choose from "
                     f"{sorted(OPTIMIZERS)} (see `gradtx list`)")
  lrs = dict(_parse_lrs(args.lr))
  for n in lrs:
    if n not in names:
      raise UsageError(f"--lr {n}=...: {n} is not in the race {names}")
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  train, test = _digits(args.seed)
  model = _model()
  loss = _loss_fn(model)
  params0 = model.init(jax.random.key(args.seed), jnp.zeros((1, 8, 8, 1)))
  xs, ys = _batches(train, args.steps, args.batch_size, args.seed)
  chunk = max(1, args.steps // 10)

  rows, curves = [], {}
  print(f"gradtx race: {len(names)} optimizers, {args.steps} steps of "
        f"{args.batch_size} digits each, seed {args.seed}")
  for name in names:
    make, default_lr, _ = OPTIMIZERS[name]
    lr = lrs.get(name, default_lr)
    tx = make(lr)

    @jax.jit
    def run(params, state, xs, ys):
      def step(carry, batch):
        p, s = carry
        value, grads = jax.value_and_grad(loss)(p, *batch)
        u, s = tx.update(grads, s, p)
        return (gradtx.apply_updates(p, u), s), value
      (params, state), values = jax.lax.scan(step, (params, state), (xs, ys))
      return params, state, values

    params, state = params0, tx.init(params0)
    losses = []
    _progress(name, 0, args.steps)
    start = None
    for k in range(0, args.steps, chunk):
      params, state, values = run(params, state, xs[k:k + chunk],
                                  ys[k:k + chunk])
      values.block_until_ready()
      if start is None:  # leave the first chunk's compilation out
        start, first = time.perf_counter(), len(values)
      losses.extend(np.asarray(values).tolist())
      _progress(name, len(losses), args.steps)
    timed = len(losses) - first
    elapsed = time.perf_counter() - start
    logits = model.apply(params, jnp.asarray(test[0]))
    acc = float(jnp.mean(jnp.argmax(logits, -1) == jnp.asarray(test[1])))
    tail = float(np.mean(losses[-max(1, args.steps // 10):]))
    rows.append({"optimizer": name, "learning_rate": lr,
                 "final_train_loss": tail, "test_accuracy": acc,
                 "steps_per_second": timed / elapsed if timed else None})
    curves[name] = losses

  print()
  print(f"{'optimizer':10s} {'lr':>8s} {'train loss':>11s} {'test acc':>9s} "
        f"{'steps/s':>9s}")
  for r in sorted(rows, key=lambda r: -r["test_accuracy"]):
    sps = f"{r['steps_per_second']:9.0f}" if r["steps_per_second"] else \
        f"{'-':>9s}"
    print(f"{r['optimizer']:10s} {r['learning_rate']:8.2g} "
          f"{r['final_train_loss']:11.4f} {r['test_accuracy']:9.3f} {sps}")
  with open(out / "race.csv", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
  with open(out / "race.json", "w") as f:
    settings = {k: v for k, v in vars(args).items() if k != "func"}
    json.dump({"args": settings, "results": rows, "losses": curves}, f,
              indent=1)
  png = _plot_curves(curves, out / "race.png")
  print(f"\nwrote {out / 'race.csv'}, {out / 'race.json'}"
        + (f", {png}" if png else " (no plot: pip install matplotlib)"))
  return 0


def _plot_curves(curves: dict, path: pathlib.Path):
  try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
  except ImportError:
    return None
  fig, ax = plt.subplots(figsize=(7, 4.5))
  for name, losses in curves.items():
    k = max(1, len(losses) // 50)
    smooth = np.convolve(losses, np.ones(k) / k, mode="valid")
    ax.plot(np.arange(len(smooth)) + k - 1, smooth, label=name)
  ax.set_yscale("log")
  ax.set_xlabel("step")
  ax.set_ylabel("train loss (moving average)")
  ax.set_title("gradtx race: a small CNN on the digits data set")
  ax.legend(ncol=2, fontsize=8)
  fig.savefig(path, dpi=110, bbox_inches="tight")
  plt.close(fig)
  return path


def _parse_lrs(items):
  for item in items or []:
    name, sep, value = item.partition("=")
    if not sep:
      raise UsageError(f"--lr wants NAME=VALUE, e.g. adam=1e-3; got {item!r}")
    try:
      v = float(value)
    except ValueError:
      raise UsageError(f"--lr {name}: {value!r} is not a number") from None
    if not v > 0:
      raise UsageError(f"--lr {name}: the learning rate must be > 0")
    yield name, v


def lr_find_cmd(args: argparse.Namespace) -> int:
  """Runs the LR range test on the digits CNN and writes its plot."""
  _need_examples()
  import itertools
  import jax
  import jax.numpy as jnp

  if args.optimizer not in OPTIMIZERS:
    raise UsageError(f"unknown optimizer {args.optimizer!r}; choose from "
                     f"{sorted(OPTIMIZERS)}")
  if not 0 < args.min_lr < args.max_lr:
    raise UsageError("need 0 < --min-lr < --max-lr")
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  train, _ = _digits(args.seed)
  model = _model()
  loss = _loss_fn(model)
  params = model.init(jax.random.key(args.seed), jnp.zeros((1, 8, 8, 1)))
  xs, ys = _batches(train, args.steps, args.batch_size, args.seed)
  batches = ((jnp.asarray(x), jnp.asarray(y)) for x, y in zip(xs, ys))
  make = OPTIMIZERS[args.optimizer][0]
  result = gradtx.lr_find(lambda p, b: loss(p, *b), params, batches, make,
                          min_lr=args.min_lr, max_lr=args.max_lr,
                          num_steps=args.steps)
  print(f"lr-find ({args.optimizer}): {len(result.losses)} steps, "
        f"{result.reason}")
  if result.suggestion is not None:
    print(f"suggested learning rate: {result.suggestion:.3g}")
  try:
    result.plot(str(out / "lr_find.png"))
    print(f"wrote {out / 'lr_find.png'}")
  except ImportError as e:
    print(f"no plot: {e}")
  return 0


def list_cmd(args: argparse.Namespace) -> int:
  """Every named optimizer with a one-line description and its paper."""
  del args
  width = max(map(len, OPTIMIZERS))
  for name, (_, lr, desc) in OPTIMIZERS.items():
    print(f"{name:{width}s}  {desc}  [race lr {lr:g}]")
  print("\nAlso: adam-family primitives amsgrad_max, rectify, bound_lr; "
        "wrappers lookahead, MultiSteps, apply_if_finite, partition; see "
        "`python -c 'import gradtx; help(gradtx)'`.")
  return 0


def bench_cmd(args: argparse.Namespace) -> int:
  """The benchmark against optax (gradtx._src.bench, shipped with the
  package; its options are gradtx._src.bench.command's)."""
  from gradtx._src.bench import command
  try:
    return command.run(args)
  except command.MissingDependency as e:
    raise UsageError(str(e)) from None


def _positive_int(text: str) -> int:
  try:
    v = int(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
  if v < 1:
    raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
  return v


def parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(
      prog="gradtx", description="gradtx: composable gradient "
      "transformations for JAX.")
  sub = p.add_subparsers(dest="command", required=True)
  r = sub.add_parser("race", help="train a small CNN with several "
                     "optimizers and compare them")
  r.add_argument("optimizers", nargs="*", metavar="OPTIMIZER",
                 help=f"which optimizers (default: {' '.join(DEFAULT_RACE)})")
  r.add_argument("--steps", type=_positive_int, default=300)
  r.add_argument("--batch-size", type=_positive_int, default=64)
  r.add_argument("--lr", action="append", metavar="NAME=VALUE",
                 help="learning rate for one optimizer (repeatable)")
  r.add_argument("--seed", type=int, default=0)
  r.add_argument("--out", default="gradtx-race",
                 help="output directory (default: gradtx-race)")
  r.set_defaults(func=race)
  f = sub.add_parser("lr-find", help="the LR range test on the same task")
  f.add_argument("--optimizer", default="adam")
  f.add_argument("--min-lr", type=float, default=1e-6)
  f.add_argument("--max-lr", type=float, default=10.0)
  f.add_argument("--steps", type=_positive_int, default=120)
  f.add_argument("--batch-size", type=_positive_int, default=64)
  f.add_argument("--seed", type=int, default=0)
  f.add_argument("--out", default="gradtx-lr-find")
  f.set_defaults(func=lr_find_cmd)
  from gradtx._src.bench import command as bench
  b = sub.add_parser("bench", help="the speed benchmark against optax",
                     description=bench.DESCRIPTION)
  bench.add_options(b)
  b.set_defaults(func=bench_cmd)
  ls = sub.add_parser("list", help="the optimizers, with their papers")
  ls.set_defaults(func=list_cmd)
  return p


def main(argv=None) -> int:
  args = parser().parse_args(argv)
  try:
    return args.func(args)
  except UsageError as e:
    print(f"gradtx {args.command}: error: {e}", file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    return 130
