"""The ``gradtx`` command: ``race``, ``lr-find``, ``bench`` and ``list``.

``race`` and ``lr-find`` train a small CNN (Flax) on scikit-learn's digits
(8x8 images, shipped with scikit-learn: no download). They need the
``examples`` extra: ``pip install "gradtx[examples]"``; their progress bar
comes from ``rich`` and their figures from matplotlib, both in it.
"""

from __future__ import annotations

import argparse
import csv
import difflib
import io
import json
import os
import pathlib
import sys
import time
from typing import Any, Callable, NamedTuple, Optional

import gradtx
from gradtx._src.tools.bench.command import _positive_int


class Named(NamedTuple):
  """One optimizer the command knows.

  ``make(learning_rate)`` builds it for ``race`` and ``lr-find`` at the
  rate ``lr``; an optimizer that cannot train on mini-batches of the digits
  (a line search or a curvature solve needs the full-batch loss) has
  ``make=None``: ``list`` shows it, ``race`` explains why it cannot run it.
  """
  family: str
  summary: str
  paper: str
  make: Optional[Callable[[float], Any]] = None
  lr: Optional[float] = None


# SWATS in the race: the relative switching test after 50 Adam steps (the
# paper's absolute test with eps = 1e-9 does not fire on this task).
def _swats(lr):
  return gradtx.swats(lr, switch_rtol=0.05, min_adam_steps=50)


# Every named optimizer, one line each, grouped by family in this order.
# Race learning rates were tuned once on the digits task (300 steps of 64).
OPTIMIZERS: dict[str, Named] = {
    # -- the SGD family
    "sgd": Named("SGD family", "SGD with heavy-ball momentum 0.9",
                 "Polyak 1964", lambda lr: gradtx.sgd(lr, momentum=0.9), 0.05),
    "nesterov": Named("SGD family", "SGD with Nesterov momentum 0.9",
                      "Sutskever et al. 2013", lambda lr: gradtx.sgd(
                          lr, momentum=0.9, nesterov=True), 0.05),
    "sgdw": Named("SGD family", "SGD, momentum, decoupled weight decay 1e-4",
                  "Loshchilov & Hutter 2019",
                  lambda lr: gradtx.sgdw(lr, momentum=0.9), 0.05),
    "noisy_sgd": Named("SGD family", "SGD with annealed Gaussian noise",
                       "Neelakantan et al. 2015",
                       lambda lr: gradtx.noisy_sgd(lr, key=0), 0.05),
    # -- adaptive: a rate per coordinate
    "adagrad": Named("adaptive", "Adagrad", "Duchi, Hazan & Singer 2011",
                     gradtx.adagrad, 0.05),
    "rmsprop": Named("adaptive", "RMSProp", "Tieleman & Hinton 2012",
                     gradtx.rmsprop, 1e-3),
    "adadelta": Named("adaptive", "Adadelta", "Zeiler 2012",
                      gradtx.adadelta, 1.0),
    "rprop": Named("adaptive", "Rprop (meant for full batches)",
                   "Riedmiller & Braun 1993", gradtx.rprop, 1e-3),
    # -- the Adam family
    "adam": Named("Adam family", "Adam", "Kingma & Ba 2015", gradtx.adam,
                  3e-3),
    "adamw": Named("Adam family", "AdamW, decoupled weight decay 1e-2",
                   "Loshchilov & Hutter 2019",
                   lambda lr: gradtx.adamw(lr, weight_decay=1e-2), 3e-3),
    "adamax": Named("Adam family", "Adamax, Adam under the max norm",
                    "Kingma & Ba 2015", gradtx.adamax, 3e-3),
    "nadam": Named("Adam family", "Nadam, Adam with Nesterov momentum",
                   "Dozat 2016", gradtx.nadam, 3e-3),
    "nadamw": Named("Adam family", "NAdamW, Nadam with decoupled decay 1e-2",
                    "Dozat 2016; Loshchilov & Hutter 2019",
                    lambda lr: gradtx.nadamw(lr, weight_decay=1e-2), 3e-3),
    "amsgrad": Named("Adam family", "AMSGrad", "Reddi, Kale & Kumar 2018",
                     gradtx.amsgrad, 3e-3),
    "radam": Named("Adam family", "RAdam, rectified Adam", "Liu et al. 2020",
                   gradtx.radam, 3e-3),
    "adabound": Named("Adam family", "AdaBound, Adam bounded towards SGD 0.05",
                      "Luo et al. 2019",
                      lambda lr: gradtx.adabound(lr, final_lr=0.05), 3e-3),
    "amsbound": Named("Adam family", "AMSBound", "Luo et al. 2019",
                      lambda lr: gradtx.amsbound(lr, final_lr=0.05), 3e-3),
    # -- built on other optimizers
    "lookahead": Named("combined", "Lookahead over Adam (k=6, alpha=0.5)",
                       "Zhang et al. 2019",
                       lambda lr: gradtx.lookahead(gradtx.adam(lr)), 3e-3),
    "ranger": Named("combined", "Ranger, Lookahead over RAdam",
                    "Zhang et al. 2019; Liu et al. 2020", gradtx.ranger, 3e-3),
    "swats": Named("combined", "SWATS, Adam then SGD (relative switch test)",
                   "Keskar & Socher 2017", _swats, 3e-3),
    # -- second order, full batch: listed, not raced. One line each:
    #    "name": Named("second order", "what it is", "paper"),
    "lbfgs": Named("second order", "L-BFGS with a zoom line search",
                   "Liu & Nocedal 1989"),
    "bfgs": Named("second order", "BFGS, dense inverse Hessian, zoom search",
                  "Broyden, Fletcher, Goldfarb & Shanno 1970"),
    "newton": Named("second order", "Newton, exact Hessian, |eigenvalues|",
                    "Nocedal & Wright 2006, sec. 3.4"),
    "newton_cg": Named("second order", "Newton-CG, Hessian-free, Steihaug CG",
                       "Dembo & Steihaug 1983"),
    "levenberg_marquardt": Named(
        "second order", "Levenberg-Marquardt for least squares",
        "Levenberg 1944; Marquardt 1963; Moré 1978"),
    "natural_gradient": Named(
        "second order", "natural gradient, Fisher solved by CG",
        "Amari 1998; Martens 2010"),
    "gauss_newton": Named(
        "second order", "Gauss-Newton for least squares, line search",
        "Gauss 1809; Hartley 1961"),
    "vsgd": Named(
        "second order", "vSGD, per-parameter rates from variance and curvature",
        "Schaul, Zhang & LeCun 2013"),
}
FAMILIES = ("SGD family", "adaptive", "Adam family", "combined",
            "second order")
DEFAULT_RACE = ["sgd", "adam", "radam", "adabound", "ranger", "swats"]
N_TEST = 360  # held-out digits; the other 1437 train


class UsageError(Exception):
  """A bad command line: reported in one line, exit status 2."""


def _canonical(name: str) -> str:
  return name.strip().lower().replace("-", "_")


def _resolve(name: str, *, trainable: bool = True) -> str:
  """The table's key for a name typed in any case, or a UsageError that
  suggests the closest names."""
  key = _canonical(name)
  if key not in OPTIMIZERS:
    close = difflib.get_close_matches(key, OPTIMIZERS, n=3, cutoff=0.6)
    quoted = [repr(c) for c in close]
    if len(quoted) > 1:
      quoted = [", ".join(quoted[:-1]), quoted[-1]]
    hint = (f"did you mean {' or '.join(quoted)}?" if close
            else f"choose from {', '.join(OPTIMIZERS)}.")
    raise UsageError(f"unknown optimizer {name!r}; {hint} "
                     f"(`gradtx list` names them all)")
  if trainable and OPTIMIZERS[key].make is None:
    raise UsageError(
        f"{key} ({OPTIMIZERS[key].summary}) needs the full-batch loss, so it "
        f"cannot train on the mini-batches of this task; "
        f"examples/lbfgs_fit.py and the docs' Second order page show the "
        f"second-order methods on full-batch fits")
  return key


def _need_examples():
  try:
    import flax.linen  # noqa: F401
    import sklearn.datasets  # noqa: F401
  except ImportError as e:
    raise UsageError(
        f"this command needs the examples extra ({e.name} is missing): "
        f"pip install \"gradtx[examples]\"") from None


def _prepare_out(command: str, out: pathlib.Path, names: list) -> None:
  """Creates ``out``; says so when files of an earlier run are replaced."""
  if out.exists() and not out.is_dir():
    raise UsageError(f"--out {out}: that is a file, not a directory")
  old = [n for n in names if (out / n).exists()]
  if old:
    print(f"gradtx {command}: {out} holds an earlier run; overwriting "
          f"{', '.join(old)} (choose another folder with --out DIR)",
          file=sys.stderr)
  out.mkdir(parents=True, exist_ok=True)


def _digits(seed: int):
  import numpy as np
  from sklearn.datasets import load_digits
  x, y = load_digits(return_X_y=True)
  x = (x / 16.0).astype(np.float32).reshape(-1, 8, 8, 1)
  perm = np.random.default_rng(seed).permutation(len(x))
  x, y = x[perm], y[perm].astype(np.int32)
  return (x[N_TEST:], y[N_TEST:]), (x[:N_TEST], y[:N_TEST])


def _patches(x, stride: int):
  """The 3x3 neighbourhoods of each pixel ('SAME' padding), side by side:
  a convolution is then one matrix product. On CPU, XLA runs this CNN's
  step about 7 times faster this way than with its convolution, whose
  gradient is slow for images this small."""
  import jax.numpy as jnp
  h, w = x.shape[1:3]
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  return jnp.concatenate([xp[:, i:i + h:stride, j:j + w:stride, :]
                          for i in range(3) for j in range(3)], axis=-1)


def _model():
  import flax.linen as nn

  class CNN(nn.Module):
    """conv 3x3x16, conv 3x3x32 with stride 2, dense 64, dense 10."""

    @nn.compact
    def __call__(self, x):
      x = nn.relu(nn.Dense(16)(_patches(x, 1)))
      x = nn.relu(nn.Dense(32)(_patches(x, 2)))
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


def _swats_switch(state) -> Optional[tuple[int, float]]:
  """(step, SGD rate) if a SWATS in ``state`` has switched, else None."""
  import jax
  from gradtx._src.swats import SwatsState
  for s in jax.tree.leaves(state, is_leaf=lambda x: isinstance(x,
                                                               SwatsState)):
    if isinstance(s, SwatsState) and bool(jax.numpy.all(s.switched)):
      return int(jax.numpy.max(s.switch_step)), float(jax.numpy.max(s.sgd_lr))
  return None


def _check_batch(batch_size: int) -> None:
  n_train = 1797 - N_TEST
  if batch_size > n_train:
    raise UsageError(f"--batch-size {batch_size}: the training set has "
                     f"{n_train} digits; choose at most that")


class _Task(NamedTuple):
  """What every optimizer of a race shares."""
  grad_fn: Callable  # (params, x, y) -> (loss, grads), jitted
  accuracy: Callable  # params -> test accuracy, jitted
  params0: Any
  xs: list  # one batch per step
  ys: list
  every: int  # steps between two test accuracies


def _train_one(name: str, lr: float, task: _Task, steps: int, bar):
  """Trains with one optimizer; returns its row of the table and its
  curves. The first step, which compiles the update, is timed apart."""
  import jax
  import numpy as np
  tx = OPTIMIZERS[name].make(lr)

  @jax.jit
  def update(grads, state, params):
    u, state = tx.update(grads, state, params)
    return gradtx.apply_updates(params, u), state

  bar.describe(f"{name}: compiling")
  params, state = task.params0, tx.init(task.params0)
  losses, eval_steps, eval_secs, accs = [], [0], [0.0], [
      float(task.accuracy(params))]
  t0 = time.perf_counter()
  train_s, counted = 0.0, 0
  for k in range(steps):
    value, grads = task.grad_fn(params, task.xs[k], task.ys[k])
    params, state = update(grads, state, params)
    losses.append(value)
    if k == 0:
      jax.block_until_ready(params)
      start = time.perf_counter()
      compile_s = start - t0
    if (k + 1) % task.every == 0 or k + 1 == steps:
      jax.block_until_ready(params)
      train_s += time.perf_counter() - start
      eval_steps.append(k + 1)
      eval_secs.append(train_s)
      accs.append(float(task.accuracy(params)))
      bar.advance(k + 1 - counted, f"{name}: training")
      counted, start = k + 1, time.perf_counter()
  losses = np.asarray(jax.device_get(losses), dtype=float).tolist()
  tail = float(np.mean(losses[-max(1, steps // 10):]))
  row = {"optimizer": name, "learning_rate": lr, "final_train_loss": tail,
         "test_accuracy": accs[-1],
         "steps_per_second": (steps - 1) / train_s if train_s else None,
         "compile_seconds": compile_s}
  run = {"losses": losses, "eval_steps": eval_steps,
         "eval_seconds": eval_secs, "test_accuracy": accs}
  line = (f"{name:9s} done: train loss {tail:.4f}, test accuracy "
          f"{accs[-1]:.3f}, compiled in {compile_s:.1f} s, {steps} steps in "
          f"{train_s:.1f} s")
  switch = _swats_switch(state)
  if switch is not None:
    row["switch_step"], row["sgd_learning_rate"] = switch
    run["switch_step"] = switch[0]
    line += (f"; switched from Adam to SGD at step {switch[0]} (SGD "
             f"learning rate {switch[1]:.3g})")
  elif name == "swats":
    line += f"; did not switch to SGD in {steps} steps"
  bar.log(line)
  return row, run


def _start(cmd: str, args: argparse.Namespace, summary: str,
           files: list) -> tuple:
  """What race and lr-find do first: check the batch size, say what runs,
  make sure the examples extra is there, clear ``args.out`` of ``files``,
  and build the task from ``args.seed``. Returns ``(out, test, model, loss,
  params, xs, ys)``: the output folder, the test split, the CNN, its loss,
  its initial params and the training batches."""
  _check_batch(args.batch_size)
  out = pathlib.Path(args.out)
  print(f"gradtx {cmd}: {summary}", flush=True)
  _need_examples()
  _prepare_out(cmd, out, files)
  import jax
  import jax.numpy as jnp

  train, test = _digits(args.seed)
  model = _model()
  # Jitted: one compile instead of one per layer's initializer (eagerly,
  # each shape of truncated normal is a program of its own); the same
  # numbers, in about half the time.
  params = jax.jit(model.init)(jax.random.key(args.seed),
                               jnp.zeros((1, 8, 8, 1)))
  xs, ys = _batches(train, args.steps, args.batch_size, args.seed)
  return out, test, model, _loss_fn(model), params, xs, ys


def race(args: argparse.Namespace) -> int:
  """Trains the CNN with each optimizer; prints and writes the results."""
  names = [_resolve(n) for n in (args.optimizers or DEFAULT_RACE)]
  names = list(dict.fromkeys(names))  # a name given twice races once
  lrs = {}
  for name, value in _parse_lrs(args.lr):
    key = _resolve(name)
    if key not in names:
      raise UsageError(f"--lr {name}=...: {key} is not in the race "
                       f"{' '.join(names)}")
    lrs[key] = value
  out, test, model, loss, params0, xs, ys = _start(
      "race", args, f"{len(names)} optimizers ({' '.join(names)}), "
      f"{args.steps} steps of {args.batch_size} digits each, seed "
      f"{args.seed}", ["race.csv", "race.json", "race.png"])
  import jax
  import jax.numpy as jnp

  xs, ys = [jnp.asarray(x) for x in xs], [jnp.asarray(y) for y in ys]
  x_test, y_test = jnp.asarray(test[0]), jnp.asarray(test[1])
  # The model's gradient is the same for every optimizer: compiled once.
  grad_fn = jax.jit(jax.value_and_grad(loss))
  accuracy = jax.jit(lambda p: jnp.mean(
      jnp.argmax(model.apply(p, x_test), -1) == y_test))
  task = _Task(grad_fn, accuracy, params0, xs, ys,
               every=max(1, args.steps // 20))  # test accuracy this often
  total = len(names) * args.steps

  rows, runs = [], {}
  with _progress(total, "compiling the model") as bar:
    jax.block_until_ready(grad_fn(params0, xs[0], ys[0]))
    for name in names:
      lr = lrs.get(name, OPTIMIZERS[name].lr)
      row, run = _train_one(name, lr, task, args.steps, bar)
      rows.append(row)
      runs[name] = run

  print()
  print(f"{'optimizer':10s} {'lr':>8s} {'train loss':>11s} {'test acc':>9s} "
        f"{'steps/s':>9s}")
  for r in sorted(rows, key=lambda r: -r["test_accuracy"]):
    sps = (f"{r['steps_per_second']:9.0f}" if r["steps_per_second"]
           else f"{'-':>9s}")
    print(f"{r['optimizer']:10s} {r['learning_rate']:8.2g} "
          f"{r['final_train_loss']:11.4f} {r['test_accuracy']:9.3f} {sps}")
  fields = ["optimizer", "learning_rate", "final_train_loss", "test_accuracy",
            "steps_per_second", "compile_seconds", "switch_step",
            "sgd_learning_rate"]
  with open(out / "race.csv", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=fields)
    w.writeheader()
    w.writerows(rows)
  with open(out / "race.json", "w") as f:
    settings = {k: v for k, v in vars(args).items() if k != "func"}
    json.dump({"args": settings, "results": rows, "runs": runs}, f, indent=1)
  from gradtx._src.tools import plots
  png = plots.race_figure(
      runs, out / "race.png",
      f"gradtx race: a small CNN on the digits, {args.steps} steps of "
      f"{args.batch_size}, seed {args.seed}")
  print(f"\nwrote {out / 'race.csv'}, {out / 'race.json'}"
        + (f", {png}" if png else " (no plot: pip install matplotlib)"))
  return 0


def _progress(total: int, description: str):
  from gradtx._src.tools import progress
  return progress.Progress(total, description)


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
  name = _resolve(args.optimizer)
  if not 0 < args.min_lr < args.max_lr:
    raise UsageError(f"need 0 < --min-lr < --max-lr, got --min-lr "
                     f"{args.min_lr:g} and --max-lr {args.max_lr:g}")
  if args.steps < 2:
    raise UsageError("--steps must be at least 2 (two learning rates)")
  if not 0 <= args.smoothing < 1:
    raise UsageError(f"--smoothing must be in [0, 1), got {args.smoothing:g}")
  out, _, _, loss, params, xs, ys = _start(
      "lr-find", args, f"{name}, learning rate from {args.min_lr:g} to "
      f"{args.max_lr:g} over {args.steps} steps of {args.batch_size} "
      f"digits, seed {args.seed}", ["lr_find.png", "lr_find.csv"])
  import jax.numpy as jnp

  batches = ((jnp.asarray(x), jnp.asarray(y)) for x, y in zip(xs, ys))
  with _progress(args.steps, "compiling the step") as bar:
    def on_step(k, lr, value):
      bar.advance(k - bar.done, f"lr {lr:.2e}, loss {value:.3g}")

    result = gradtx.lr_find(lambda p, b: loss(p, *b), params, batches,
                            OPTIMIZERS[name].make, min_lr=args.min_lr,
                            max_lr=args.max_lr, num_steps=args.steps,
                            smoothing=args.smoothing, on_step=on_step)
  print(f"lr-find ({name}): {len(result.losses)} steps, {result.reason}")
  if result.suggestion is not None:
    print(f"suggested learning rate: {result.suggestion:.3g} (where the "
          f"smoothed loss falls fastest)")
  else:
    print("no suggestion: too few steps to tell (try --steps 60 or more)")
  with open(out / "lr_find.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["learning_rate", "loss", "smoothed_loss"])
    w.writerows(zip(result.learning_rates.tolist(), result.losses.tolist(),
                    result.smoothed_losses.tolist()))
  try:
    result.plot(str(out / "lr_find.png"))
    print(f"wrote {out / 'lr_find.png'} and {out / 'lr_find.csv'}")
  except ImportError as e:
    print(f"wrote {out / 'lr_find.csv'} (no plot: {e})")
  return 0


def list_cmd(args: argparse.Namespace) -> int:
  """Every named optimizer, by family, with its paper."""
  del args
  width = max(map(len, OPTIMIZERS))
  swidth = max(len(o.summary) for o in OPTIMIZERS.values())
  pwidth = max(len(o.paper) for o in OPTIMIZERS.values())
  for family in FAMILIES:
    members = [(n, o) for n, o in OPTIMIZERS.items() if o.family == family]
    if not members:
      continue
    print(family + (" (full batch: not raced)" if family == "second order"
                    else ""))
    for name, o in members:
      race_lr = f"race lr {o.lr:g}" if o.lr is not None else ""
      print(f"  {name:{width}s}  {o.summary:{swidth}s}  {o.paper:{pwidth}s}  "
            f"{race_lr}".rstrip())
  print("\nWrappers that take any of these: lookahead, MultiSteps, "
        "apply_if_finite, masked, partition, ema_params, inject_hyperparams; "
        "Adam-family pieces: amsgrad_max, rectify, bound_lr. "
        "`python -c 'import gradtx; help(gradtx.adam)'` shows one in full.")
  return 0


def bench_cmd(args: argparse.Namespace) -> int:
  """The benchmark against optax (gradtx._src.tools.bench, shipped with the
  package; its options are gradtx._src.tools.bench.command's)."""
  from gradtx._src.tools.bench import command
  try:
    return command.run(args)
  except command.MissingDependency as e:
    raise UsageError(str(e)) from None


def _positive_float(text: str) -> float:
  try:
    v = float(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
  if not v > 0:
    raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
  return v


def _add_run_options(p: argparse.ArgumentParser, seeded: str, out: str,
                     files: str) -> None:
  """--batch-size, --seed and --out, which race and lr-find share."""
  p.add_argument("--batch-size", type=_positive_int, metavar="N", default=64,
                 help="digits per step (default: %(default)s)")
  p.add_argument("--seed", type=int, default=0, metavar="N",
                 help=f"seeds {seeded} (default: %(default)s)")
  p.add_argument("--out", default=out, metavar="DIR",
                 help=f"folder for {files}, created if missing; an earlier "
                 f"run's files there are replaced (default: %(default)s)")


def parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(
      prog="gradtx", description="gradtx: composable gradient "
      "transformations for JAX. `gradtx COMMAND --help` describes a "
      "command.")
  sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
  r = sub.add_parser(
      "race", help="train a small CNN with several optimizers and compare "
      "them", description="Trains a small CNN on the 8x8 digits with each "
      "optimizer, from the same weights on the same batches; prints train "
      "loss, test accuracy and speed, and writes race.png, race.csv and "
      "race.json. Names are case-insensitive; `gradtx list` shows them.")
  r.add_argument("optimizers", nargs="*", metavar="OPTIMIZER",
                 help=f"which optimizers race (default: "
                 f"{' '.join(DEFAULT_RACE)})")
  r.add_argument("--steps", type=_positive_int, metavar="N", default=300,
                 help="training steps per optimizer (default: %(default)s)")
  r.add_argument("--lr", action="append", metavar="NAME=VALUE",
                 help="the learning rate of one optimizer, e.g. adam=1e-3; "
                 "repeatable (default: each one's rate in `gradtx list`)")
  _add_run_options(r, "the train/test split, the batches and the initial "
                   "weights", "gradtx-race", "race.png, race.csv and race.json")
  r.set_defaults(func=race)
  f = sub.add_parser(
      "lr-find", help="the LR range test on the same task",
      description="The LR range test (Smith 2017) on the digits CNN: the "
      "learning rate grows geometrically from --min-lr to --max-lr, one "
      "step each, while the loss is recorded. Prints the suggested rate and "
      "writes lr_find.png and lr_find.csv.")
  f.add_argument("--optimizer", default="adam", metavar="NAME",
                 help="any raceable name of `gradtx list`, any case "
                 "(default: %(default)s)")
  f.add_argument("--min-lr", type=_positive_float, metavar="LR", default=1e-6,
                 help="the first learning rate (default: %(default)g)")
  f.add_argument("--max-lr", type=_positive_float, metavar="LR", default=10.0,
                 help="the last learning rate (default: %(default)g)")
  # Checked in lr_find_cmd: a sweep needs two rates, which a positive-int
  # type would not say.
  f.add_argument("--steps", type=int, metavar="N", default=120,
                 help="steps, one learning rate each; the sweep stops early "
                 "once the loss diverges (default: %(default)s)")
  f.add_argument("--smoothing", type=float, default=0.9, metavar="BETA",
                 help="weight of the past in the loss's moving average, in "
                 "[0, 1); the sweep stops once that average passes 4 times "
                 "its best (default: %(default)s, about 10 steps)")
  _add_run_options(f, "the batches and the initial weights", "gradtx-lr-find",
                   "lr_find.png and lr_find.csv")
  f.set_defaults(func=lr_find_cmd)
  from gradtx._src.tools.bench import command as bench
  b = sub.add_parser("bench", help="the speed benchmark against optax",
                     description=bench.DESCRIPTION)
  bench.add_options(b)
  b.set_defaults(func=bench_cmd)
  ls = sub.add_parser("list", help="every named optimizer, by family, with "
                      "its paper", description="Every named optimizer, by "
                      "family, with its paper and its race learning rate.")
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
  except BrokenPipeError:
    # The reader went away (`gradtx list | head`): no traceback, and none
    # from the interpreter flushing stdout at exit either.
    try:
      os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
      pass
    return 1
