"""gradtx against optax on real model parameter trees: step time, compile time,
optimizer-state memory, and an Adam memory-bandwidth bound.

    python benchmarks/bench.py                       # the full run
    python benchmarks/bench.py --quick               # smoke run, few repeats
    python benchmarks/bench.py --trees gpt2 --optimizers adam adamw --repeats 20
    gradtx bench --quick                             # the same, installed

Every (tree, optimizer) row times the same jitted, buffer-donating step for
both libraries::

    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return apply_updates(params, updates), state

    compiled = jax.jit(step, donate_argnums=(0, 1)).lower(...).compile()

All executables of a tree are compiled before its rows are timed (see
``TreeBench.precompile``, which also decides whether XLA compiles may run
side by side). After warm-up the two libraries' steps are interleaved (one gradtx step, one
optax step, the order flipped every pair), so slow drift of the machine (other
load, thermal, frequency) hits both alike; the row reports each library's
median step time and the median over pairs of gradtx/optax. See README.md.
"""

from __future__ import annotations

import concurrent.futures
import gc
import json
import os
import pathlib
import platform
import statistics
import threading
import time
import warnings
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

import gradtx
from gradtx._src.tools.bench.command import (ALL_OPTIMIZERS, BOUND,
                                             DEFAULT_SKIP, OPTIMIZER_NAMES,
                                             QUICK_REPEATS, TREE_NAMES,
                                             TREE_REPEATS)

SEED = 0
F32 = np.float32

# --------------------------------------------------------------------------
# Trees, from shapes only.


def gpt2_small_shapes() -> dict:
  """GPT-2 small (124,439,808 params, 148 leaves; wte tied to the head)."""
  d, vocab, ctx, layers = 768, 50257, 1024, 12

  def ln():
    return {"scale": (d,), "bias": (d,)}

  def dense(n_in, n_out):
    return {"w": (n_in, n_out), "b": (n_out,)}

  tree = {"wte": (vocab, d), "wpe": (ctx, d), "h": {}, "ln_f": ln()}
  for i in range(layers):
    tree["h"][f"{i:02d}"] = {
        "ln_1": ln(),
        "attn": {"c_attn": dense(d, 3 * d), "c_proj": dense(d, d)},
        "ln_2": ln(),
        "mlp": {"c_fc": dense(d, 4 * d), "c_proj": dense(4 * d, d)},
    }
  return tree


def resnet50_shapes() -> dict:
  """ResNet-50 v1 (bottleneck [3, 4, 6, 3]): conv kernels (HWIO, no bias),
  batch-norm scale/bias, the 1000-way head: 25,557,032 params, 161 leaves."""

  def bn(c):
    return {"scale": (c,), "bias": (c,)}

  tree = {"conv_init": {"kernel": (7, 7, 3, 64)}, "bn_init": bn(64)}
  c_in = 64
  for stage, (blocks, width) in enumerate(zip([3, 4, 6, 3],
                                              [64, 128, 256, 512])):
    for b in range(blocks):
      blk = {
          "conv1": {"kernel": (1, 1, c_in, width)}, "bn1": bn(width),
          "conv2": {"kernel": (3, 3, width, width)}, "bn2": bn(width),
          "conv3": {"kernel": (1, 1, width, 4 * width)}, "bn3": bn(4 * width),
      }
      if b == 0:  # projection shortcut
        blk["proj_conv"] = {"kernel": (1, 1, c_in, 4 * width)}
        blk["proj_bn"] = bn(4 * width)
      tree[f"stage{stage + 1}_block{b + 1}"] = blk
      c_in = 4 * width
  tree["head"] = {"kernel": (c_in, 1000), "bias": (1000,)}
  return tree


def many_leaves_shapes(n: int, size: int = 64) -> dict:
  return {f"p{i:05d}": (size,) for i in range(n)}


TREES: dict[str, tuple[Callable[[], dict], str]] = {
    "gpt2": (gpt2_small_shapes, "GPT-2 small parameter shapes"),
    "resnet50": (resnet50_shapes, "ResNet-50 parameter shapes"),
    "many_small": (lambda: many_leaves_shapes(2000),
                   "2000 leaves of 64 floats"),
    "tiny": (lambda: many_leaves_shapes(50),
             "50 leaves of 64 floats (smoke test; not in the default run)"),
}
assert tuple(TREES) == TREE_NAMES


def is_shape(x) -> bool:
  return isinstance(x, tuple) and all(isinstance(d, int) for d in x)


def host_tree(shapes: dict, seed: int) -> Any:
  """float32 standard normal numpy leaves, reproducible from ``seed``."""
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda s: rng.standard_normal(s, dtype=F32), shapes,
                      is_leaf=is_shape)


def to_device(host: Any) -> Any:
  # jnp.array copies, so every library gets buffers it may donate; the dtype
  # is pinned so a run under jax_enable_x64 (the test suite) stays float32.
  return jax.tree.map(lambda x: jnp.array(x, dtype=jnp.float32, copy=True),
                      host)


def tree_bytes(tree: Any) -> int:
  return int(sum(x.nbytes for x in jax.tree.leaves(tree)))


# --------------------------------------------------------------------------
# Optimizers.
#
# name -> (gradtx factory, optax factory, what the optax column is)

LR = 1e-3
BF16 = jnp.bfloat16
FLAT_MAX = 2 ** 14  # gradtx.flatten's max_leaf_size in the adam_flat row

OPTIMIZERS: dict[str, tuple[Callable[[], Any], tuple[str, Callable[[], Any]],
                            str]] = {
    "adam": (lambda: gradtx.adam(LR),
             ("adam", lambda: optax.adam(LR)), "optax.adam"),
    "adamw": (lambda: gradtx.adamw(LR, weight_decay=1e-4),
              ("adamw", lambda: optax.adamw(LR, weight_decay=1e-4)),
              "optax.adamw"),
    "sgd": (lambda: gradtx.sgd(1e-2, momentum=0.9),
            ("sgd", lambda: optax.sgd(1e-2, momentum=0.9)),
            "optax.sgd(momentum=0.9)"),
    "amsgrad": (lambda: gradtx.amsgrad(LR),
                ("amsgrad", lambda: optax.amsgrad(LR)), "optax.amsgrad"),
    "radam": (lambda: gradtx.radam(LR),
              ("radam", lambda: optax.radam(LR)), "optax.radam"),
    "adabound": (lambda: gradtx.adabound(LR, final_lr=0.1),
                 ("adam", lambda: optax.adam(LR)),
                 "optax.adam (optax has no adabound; nearest baseline)"),
    "adam_bf16": (lambda: gradtx.adam(LR, mu_dtype=BF16, nu_dtype=BF16),
                  ("adam", lambda: optax.adam(LR)),
                  "optax.adam with float32 moments (gradtx stores mu, nu "
                  "in bfloat16)"),
    "adam_mu_bf16": (lambda: gradtx.adam(LR, mu_dtype=BF16),
                     ("adam_mu_bf16", lambda: optax.adam(LR, mu_dtype=BF16)),
                     "optax.adam(mu_dtype=bfloat16): the same state on both "
                     "sides"),
    "adam_flat": (lambda: gradtx.flatten(gradtx.adam(LR),
                                         max_leaf_size=FLAT_MAX),
                  ("adam", lambda: optax.adam(LR)),
                  "optax.adam (gradtx.flatten concatenates the leaves of "
                  "at most 2**14 entries)"),
}
assert tuple(OPTIMIZERS) == OPTIMIZER_NAMES

ROW_LABEL = {
    "adabound": "adabound (vs optax.adam)",
    "adam_bf16": "adam bf16 mu,nu (vs optax.adam f32)",
    "adam_mu_bf16": "adam bf16 mu",
    "adam_flat": "flatten(adam, max_leaf_size=2**14) (vs optax.adam)",
}


def make_step(tx, apply_updates):
  def step(params, state, grads):
    updates, state = tx.update(grads, state, params)
    return apply_updates(params, updates), state
  return step


def fused_adam_step(b1=0.9, b2=0.999, eps=1e-8, lr=LR):
  """Adam on one flat float32 buffer, one expression: the bandwidth bound."""

  def step(params, state, grads):
    mu, nu, count = state
    count = count + 1
    t = count.astype(jnp.float32)
    bc1 = 1 - jnp.float32(b1) ** t
    bc2 = 1 - jnp.float32(b2) ** t
    mu = b1 * mu + (1 - b1) * grads
    nu = b2 * nu + (1 - b2) * grads * grads
    params = params - lr * (mu / bc1) / (jnp.sqrt(nu / bc2) + eps)
    return params, (mu, nu, count)
  return step


# --------------------------------------------------------------------------
# Measurement.


def lower_step(step, params, state, grads) -> tuple[Any, dict]:
  """``jax.jit(step, donate_argnums=(0, 1)).lower(...)``, timed, with the
  warnings it raised (a donation JAX cannot use warns here)."""
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    t0 = time.perf_counter()
    lowered = jax.jit(step, donate_argnums=(0, 1)).lower(params, state, grads)
    lower_s = time.perf_counter() - t0
  return lowered, {"lower_s": lower_s,
                   "warnings": [str(w.message)[:300] for w in caught]}


def xla_compile(lowered) -> tuple[Any, float]:
  """``lowered.compile()`` and its wall time. It releases the GIL, so
  several can run side by side (see :meth:`TreeBench.precompile`)."""
  t0 = time.perf_counter()
  compiled = lowered.compile()
  return compiled, time.perf_counter() - t0


def finish_info(info: dict, xla_s: float) -> dict:
  return dict(info, xla_compile_s=xla_s, compile_s=info["lower_s"] + xla_s)


class Runner:
  """One library's compiled step and the buffers it steps (donated)."""

  def __init__(self, compiled, params, state, grads):
    self.compiled, self.params, self.state, self.grads = (compiled, params,
                                                          state, grads)
    self.state_bytes = tree_bytes(state)

  def step(self) -> float:
    t0 = time.perf_counter()
    self.params, self.state = self.compiled(self.params, self.state,
                                            self.grads)
    jax.block_until_ready((self.params, self.state))
    return time.perf_counter() - t0

  def check_finite(self) -> bool:
    return bool(all(bool(jnp.all(jnp.isfinite(x)))
                    for x in jax.tree.leaves(self.params)))


def interleave(a: Runner, b: Runner, warmup: int, pairs: int) -> dict:
  for _ in range(warmup):
    a.step()
    b.step()
  ta, tb = [], []
  for i in range(pairs):
    if i % 2 == 0:
      ta.append(a.step())
      tb.append(b.step())
    else:
      tb.append(b.step())
      ta.append(a.step())
  ratios = [x / y for x, y in zip(ta, tb)]
  q = lambda v, p: float(np.percentile(v, p))
  return {
      "a_ms": 1e3 * statistics.median(ta), "b_ms": 1e3 * statistics.median(tb),
      "a_min_ms": 1e3 * min(ta), "b_min_ms": 1e3 * min(tb),
      "ratio": statistics.median(ratios),
      "ratio_q25": q(ratios, 25), "ratio_q75": q(ratios, 75),
      "pairs": pairs, "warmup": warmup,
  }


def pair(opt: str) -> list[tuple[str, str, Any]]:
  """The (library, executable key, transform factory) pair a row times:
  gradtx first, then its baseline."""
  if opt == BOUND:
    return [("gradtx", "adam", OPTIMIZERS["adam"][0]), ("fused", "adam", None)]
  gx_make, (ox_key, ox_make), _ = OPTIMIZERS[opt]
  return [("gradtx", opt, gx_make), ("optax", ox_key, ox_make)]


class TreeBench:
  """All rows of one tree; compiled executables are shared between rows
  (optax.adam is the baseline of three rows, gradtx.adam of two)."""

  def __init__(self, name: str, warmup: int, pairs: int, log):
    self.name, self.warmup, self.pairs, self.log = name, warmup, pairs, log
    shapes = TREES[name][0]()
    self.host_params = host_tree(shapes, SEED)
    self.host_grads = jax.tree.map(lambda x: x * F32(1e-2),
                                   host_tree(shapes, SEED + 1))
    leaves = jax.tree.leaves(self.host_params)
    self.n_leaves = len(leaves)
    self.n_params = int(sum(x.size for x in leaves))
    self.grads = to_device(self.host_grads)
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(self.grads))
    self.cache: dict[tuple[str, str], tuple[Any, dict]] = {}
    self.timed: set[tuple[str, str]] = set()

  def info(self) -> dict:
    return {"description": TREES[self.name][1], "leaves": self.n_leaves,
            "params": self.n_params, "param_bytes": 4 * self.n_params}

  def _inputs(self, lib: str, make_tx) -> tuple:
    """Fresh device buffers (the step donates them) for one library."""
    if lib == "fused":
      leaves = jax.tree.leaves
      params = jnp.array(np.concatenate(
          [x.ravel() for x in leaves(self.host_params)]), dtype=jnp.float32)
      grads = jnp.array(np.concatenate(
          [x.ravel() for x in leaves(self.host_grads)]), dtype=jnp.float32)
      state = (jnp.zeros(self.n_params, jnp.float32),
               jnp.zeros(self.n_params, jnp.float32),
               jnp.zeros([], jnp.int32))
      return params, state, grads
    params = to_device(self.host_params)
    return params, make_tx().init(params), self.grads

  def _lower(self, lib: str, make_tx) -> tuple[Any, dict]:
    # Shapes and dtypes are all lowering needs: no device buffers here.
    f32 = lambda x: jax.ShapeDtypeStruct(np.shape(x), jnp.float32)
    if lib == "fused":
      flat = jax.ShapeDtypeStruct((self.n_params,), jnp.float32)
      step, params, grads = fused_adam_step(), flat, flat
      state = (flat, flat, jax.ShapeDtypeStruct((), jnp.int32))
    else:
      apply = gradtx.apply_updates if lib == "gradtx" else optax.apply_updates
      params = jax.tree.map(f32, self.host_params)
      grads = jax.tree.map(f32, self.host_grads)
      state = jax.eval_shape(make_tx().init, params)
      # A fresh tx and a fresh step function: nothing is traced already.
      step = make_step(make_tx(), apply)
    return lower_step(step, params, state, grads)

  def precompile(self, opts: list[str],
                 pool: Optional[concurrent.futures.ThreadPoolExecutor],
                 workers: int) -> dict:
    """Compiles every executable the rows ``opts`` need, before any row is
    timed, so the steps are timed later on an idle machine.

    Lowering (Python, holding the GIL) runs one at a time, the libraries
    alternating. The first XLA compile runs alone, and its CPU time over
    its wall time says how many cores XLA used. If it used one (a tree of
    many small leaves, where XLA's compile is single-threaded), the others
    compile ``workers`` at a time on ``pool``: each then runs as fast as it
    would alone, and the tree's compiles take a fraction of the wall time.
    If XLA used more than one core (big leaves: it generates code on
    several threads), compiles side by side would slow each other down and
    skew the compile times, so they run one at a time.
    """
    jobs, seen = [], set(self.cache)
    for i, opt in enumerate(opts):
      for lib, key, make in pair(opt)[::(1 if i % 2 == 0 else -1)]:
        if (lib, key) not in seen:
          seen.add((lib, key))
          jobs.append((lib, key, make))
    if not jobs:
      return {"parallel": False}
    lowered = [self._lower(lib, make) for lib, _, make in jobs]
    cpu0 = time.process_time()
    first = xla_compile(lowered[0][0])
    cores = (time.process_time() - cpu0) / max(first[1], 1e-9)
    parallel = workers > 1 and len(jobs) > 2 and cores < 1.2
    rest = [lo for lo, _ in lowered[1:]]
    done = [first] + (list(pool.map(xla_compile, rest)) if parallel
                      else [xla_compile(lo) for lo in rest])
    for (lib, key, _), (_, info), (compiled, xla_s) in zip(jobs, lowered,
                                                          done):
      self.cache[lib, key] = (compiled, finish_info(info, xla_s))
    return {"executables": len(jobs), "first_compile_cores": cores,
            "parallel": parallel}

  def runner(self, lib: str, key: str, make_tx) -> tuple[Runner, dict]:
    """The executable :meth:`precompile` made, on fresh buffers."""
    compiled, cinfo = self.cache[lib, key]
    return Runner(compiled, *self._inputs(lib, make_tx)), cinfo

  def row(self, opt: str) -> dict:
    _, (ox_key, _), baseline = OPTIMIZERS[opt]
    t0 = time.perf_counter()
    # optax.adam's executable is the baseline of several rows: the first
    # row that times it owns its compile time, later rows mark it reused.
    o_reused = ("optax", ox_key) in self.timed
    self.timed.add(("optax", ox_key))
    g, gc_info = self.runner(*pair(opt)[0])
    o, oc_info = self.runner(*pair(opt)[1])
    timing = interleave(g, o, self.warmup, self.pairs)
    finite = g.check_finite() and o.check_finite()
    res = {
        "tree": self.name, "optimizer": opt, "label": ROW_LABEL.get(opt, opt),
        "optax_baseline": baseline,
        "gradtx_ms": timing["a_ms"], "optax_ms": timing["b_ms"],
        "gradtx_min_ms": timing["a_min_ms"], "optax_min_ms": timing["b_min_ms"],
        "ratio": timing["ratio"], "ratio_q25": timing["ratio_q25"],
        "ratio_q75": timing["ratio_q75"],
        "pairs": timing["pairs"], "warmup": timing["warmup"],
        "gradtx_compile_s": gc_info["compile_s"],
        "optax_compile_s": oc_info["compile_s"],
        "gradtx_lower_s": gc_info["lower_s"],
        "optax_lower_s": oc_info["lower_s"],
        "gradtx_xla_compile_s": gc_info["xla_compile_s"],
        "optax_xla_compile_s": oc_info["xla_compile_s"],
        "optax_compile_reused_from": ox_key if o_reused else None,
        "gradtx_state_bytes_per_param": g.state_bytes / self.n_params,
        "optax_state_bytes_per_param": o.state_bytes / self.n_params,
        "gradtx_state_bytes": g.state_bytes, "optax_state_bytes": o.state_bytes,
        "gradtx_compile_warnings": gc_info["warnings"],
        "optax_compile_warnings": oc_info["warnings"],
        "params_finite_after": finite,
        "row_wall_s": None,
    }
    del g, o
    gc.collect()
    res["row_wall_s"] = time.perf_counter() - t0
    self.log(f"  {self.name:10s} {opt:10s} gradtx {res['gradtx_ms']:9.2f} ms"
             f"  optax {res['optax_ms']:9.2f} ms  ratio {res['ratio']:.3f}"
             f"  ({res['row_wall_s']:.1f} s)")
    return res

  def bound(self) -> dict:
    t0 = time.perf_counter()
    g, g_info = self.runner(*pair(BOUND)[0])
    f, f_info = self.runner(*pair(BOUND)[1])
    timing = interleave(g, f, self.warmup, self.pairs)
    finite = g.check_finite() and f.check_finite()
    del g, f
    gc.collect()
    # Bytes an Adam step must move: read params, grads, mu, nu; write
    # params, mu, nu.
    moved = 7 * 4 * self.n_params
    res = {
        "tree": self.name, "gradtx_adam_ms": timing["a_ms"],
        "bound_ms": timing["b_ms"], "gradtx_over_bound": timing["ratio"],
        "ratio_q25": timing["ratio_q25"], "ratio_q75": timing["ratio_q75"],
        "pairs": timing["pairs"], "warmup": timing["warmup"],
        "bytes_moved_per_step": moved,
        "bound_GBps": moved / (timing["b_ms"] * 1e-3) / 1e9,
        "gradtx_GBps": moved / (timing["a_ms"] * 1e-3) / 1e9,
        "bound_compile_s": f_info["compile_s"],
        "gradtx_adam_compile_s": g_info["compile_s"],
        "params_finite_after": finite,
        "row_wall_s": time.perf_counter() - t0,
    }
    self.log(f"  {self.name:10s} {'bound':10s} gradtx {res['gradtx_adam_ms']:9.2f}"
             f" ms  fused {res['bound_ms']:9.2f} ms  ratio "
             f"{res['gradtx_over_bound']:.3f}  ({res['row_wall_s']:.1f} s)")
    return res


# --------------------------------------------------------------------------
# Machine, tables, main.


def machine_info() -> dict:
  cpu = "unknown"
  try:
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
      if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
  except OSError:
    pass
  mem = None
  try:
    for line in pathlib.Path("/proc/meminfo").read_text().splitlines():
      if line.startswith("MemTotal"):
        mem = int(line.split()[1]) * 1024
  except OSError:
    pass
  try:
    affinity = len(os.sched_getaffinity(0))
  except AttributeError:
    affinity = None
  import jaxlib
  return {
      "cpu_model": cpu, "cpu_count": os.cpu_count(),
      "cpus_usable": affinity, "mem_total_bytes": mem,
      "loadavg_start": load_average(),
      "platform": platform.platform(), "python": platform.python_version(),
      "jax": jax.__version__, "jaxlib": jaxlib.__version__,
      "optax": optax.__version__, "gradtx": gradtx.__version__,
      "numpy": np.__version__, "backend": jax.default_backend(),
      "devices": [str(d) for d in jax.devices()],
      "x64_enabled": bool(jax.config.jax_enable_x64),
      "XLA_FLAGS": os.environ.get("XLA_FLAGS"),
      "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
  }


def warm_up_compiler() -> None:
  """The first compile in a process, and the first in each thread, also set
  up XLA, LLVM and the thread's memory; do that on a two-leaf tree, untimed,
  so no row's compile time carries it."""
  params = {"a": jnp.ones((8,), jnp.float32), "b": jnp.ones((8,), jnp.float32)}
  for tx, apply in ((gradtx.adam(LR), gradtx.apply_updates),
                    (optax.adam(LR), optax.apply_updates)):
    jax.jit(make_step(tx, apply)).lower(params, tx.init(params),
                                        params).compile()


def compile_pool(workers: int) -> concurrent.futures.ThreadPoolExecutor:
  """``workers`` threads for XLA compiles, each warmed up once."""
  pool = concurrent.futures.ThreadPoolExecutor(workers)
  barrier = threading.Barrier(workers)

  def warm():
    barrier.wait()  # one warm-up per thread, not two on one thread
    warm_up_compiler()

  for f in [pool.submit(warm) for _ in range(workers)]:
    f.result()
  return pool


def default_compile_workers() -> int:
  try:
    cores = len(os.sched_getaffinity(0))
  except AttributeError:
    cores = os.cpu_count() or 1
  return max(1, min(4, cores))


def load_average() -> Optional[list]:
  try:
    return [float(x) for x in os.getloadavg()]
  except OSError:
    return None


def fmt_bpp(g: float, o: float) -> str:
  if abs(g - o) < 5e-3:
    return f"{g:.2f}"
  return f"{g:.2f} (optax {o:.2f})"


def main_table(rows: list[dict]) -> str:
  out = ["| tree | optimizer | gradtx step ms | optax step ms | ratio | "
         "gradtx compile s | optax compile s | state bytes/param |",
         "|---|---|---:|---:|---:|---:|---:|---:|"]
  for r in rows:
    oc = f"{r['optax_compile_s']:.2f}"
    if r["optax_compile_reused_from"]:
      oc += "*"
    out.append(
        f"| {r['tree']} | {r['label']} | {r['gradtx_ms']:.2f} | "
        f"{r['optax_ms']:.2f} | {r['ratio']:.3f} | "
        f"{r['gradtx_compile_s']:.2f} | {oc} | "
        f"{fmt_bpp(r['gradtx_state_bytes_per_param'], r['optax_state_bytes_per_param'])} |")
  return "\n".join(out)


def bound_table(rows: list[dict]) -> str:
  out = ["| tree | gradtx adam ms | fused flat Adam ms | gradtx / bound | "
         "gradtx GB/s | fused GB/s |",
         "|---|---:|---:|---:|---:|---:|"]
  for r in rows:
    out.append(f"| {r['tree']} | {r['gradtx_adam_ms']:.2f} | "
               f"{r['bound_ms']:.2f} | {r['gradtx_over_bound']:.3f} | "
               f"{r['gradtx_GBps']:.1f} | {r['bound_GBps']:.1f} |")
  return "\n".join(out)


def run(args) -> int:
  """The CPU benchmark for the options of :mod:`gradtx._src.tools.bench.command`
  (trees and optimizers already resolved)."""
  trees = args.trees
  opts = args.optimizers or list(ALL_OPTIMIZERS)
  workers = args.compile_workers or default_compile_workers()
  t_start = time.perf_counter()
  log = lambda s: print(s, flush=True)
  machine = machine_info()
  log("machine: " + ", ".join(
      f"{k}={machine[k]}" for k in ("cpu_model", "cpu_count", "cpus_usable",
                                    "backend", "jax", "jaxlib", "optax",
                                    "gradtx", "loadavg_start")))
  warm_up_compiler()
  pool = compile_pool(workers) if workers > 1 else None
  results, bounds, tree_info, config = [], [], {}, {}
  for name in trees:
    warmup, pairs = QUICK_REPEATS if args.quick else TREE_REPEATS[name]
    if args.repeats is not None:
      pairs = args.repeats
    if args.warmup is not None:
      warmup = args.warmup
    t_tree = time.perf_counter()
    tb = TreeBench(name, warmup, pairs, log)
    tree_info[name] = tb.info()
    log(f"tree {name}: {tb.n_leaves} leaves, {tb.n_params:,} params "
        f"(warm-up {warmup}, {pairs} pairs per row)")
    tree_opts = [o for o in opts if args.optimizers or
                 (name, o) not in DEFAULT_SKIP]
    t_compile = time.perf_counter()
    stage = tb.precompile(tree_opts, pool, workers)
    stage["wall_s"] = time.perf_counter() - t_compile
    tree_info[name]["compile_stage"] = stage
    if "executables" in stage:
      log(f"  compiled {stage['executables']} executables in "
          f"{stage['wall_s']:.1f} s; the first used "
          f"{stage['first_compile_cores']:.2f} cores, so the rest compiled "
          + (f"{workers} at a time" if stage["parallel"] else "one at a time"))
    for opt in tree_opts:
      if opt == BOUND:
        bounds.append(tb.bound())
      else:
        results.append(tb.row(opt))
    del tb
    gc.collect()
    tree_info[name]["wall_s"] = time.perf_counter() - t_tree
    config[name] = {"warmup": warmup, "pairs": pairs}
  if pool is not None:
    pool.shutdown()
  total = time.perf_counter() - t_start
  machine["loadavg_end"] = load_average()

  print()
  print(f"machine: {machine['cpu_model']}, {machine['cpu_count']} cores "
        f"({machine['cpus_usable']} usable), backend {machine['backend']}, "
        f"jax {machine['jax']}, jaxlib {machine['jaxlib']}, optax "
        f"{machine['optax']}, gradtx {machine['gradtx']}; load average "
        f"{machine['loadavg_start']} -> {machine['loadavg_end']}")
  for name, info in tree_info.items():
    print(f"tree {name}: {info['description']}, {info['leaves']} leaves, "
          f"{info['params']:,} params")
  if results:
    print()
    print(main_table(results))
    print()
    print("step ms: median step time of the jitted, donating step; ratio: "
          "median over interleaved pairs of gradtx/optax (< 1: gradtx "
          "faster). compile s: jax.jit(step).lower(...).compile(); "
          "* = optax.adam's executable, compiled once per tree and reused as "
          "the baseline of the adabound, adam bf16 and flatten rows. "
          "flatten: gradtx.flatten(gradtx.adam, max_leaf_size=2**14) "
          "concatenates the small leaves per dtype. adabound: optax "
          "has no AdaBound, its row compares with optax.adam, the nearest "
          "baseline. adam bf16: gradtx.adam(mu_dtype=bfloat16, "
          "nu_dtype=bfloat16) against optax.adam with float32 moments. "
          "adam bf16 mu: both libraries with mu_dtype=bfloat16.")
    bf = [r for r in results if r["optimizer"] == "adam_bf16"]
    for r in bf:
      saved = (r["optax_state_bytes_per_param"]
               - r["gradtx_state_bytes_per_param"])
      print(f"  {r['tree']}: bfloat16 moments keep "
            f"{r['gradtx_state_bytes_per_param']:.2f} state bytes/param "
            f"instead of {r['optax_state_bytes_per_param']:.2f} "
            f"(saves {saved:.2f} B/param = "
            f"{saved * tree_info[r['tree']]['params'] / 2**20:.0f} MiB)")
  if bounds:
    print()
    print(bound_table(bounds))
    print()
    print("bound: the same Adam step as one hand-written jitted expression "
          "over flat float32 params, grads, mu, nu of the tree's total "
          "size, interleaved with gradtx.adam; GB/s counts the 7 x 4 bytes "
          "per parameter an Adam step must read and write.")
  print()
  print(f"total runtime: {total:.1f} s")

  data = {
      "machine": machine,
      "config": {"trees": trees, "optimizers": opts, "quick": args.quick,
                 "compile_workers": workers,
                 "repeats_override": args.repeats, "per_tree": config,
                 "learning_rate": LR, "seed": SEED,
                 "step": "jax.jit(step, donate_argnums=(0, 1)); "
                         "step(params, state, grads) -> (params, state)"},
      "trees": tree_info,
      "results": results,
      "bandwidth_bound": bounds,
      "markdown_table": main_table(results) if results else "",
      "markdown_bound_table": bound_table(bounds) if bounds else "",
      "total_runtime_s": total,
  }
  out = pathlib.Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(data, indent=2) + "\n")
  print(f"wrote {out}")
  return 0
