"""The optimizer step compiled for a TPU v5e on a machine without one.

XLA compiles for a TPU from a topology description alone: with ``libtpu``
installed (``pip install "jax[tpu]"``, or the ``bench-tpu`` extra) and the
CPU as JAX's only platform,

    topology = jax.experimental.topologies.get_topology_desc(
        platform="tpu", topology_name="v5e:2x2")

gives four TPU devices that ``jax.jit(step).lower(...).compile()`` can
target. Nothing runs, but the compiled executable says what a step would
cost on the chip:

* **kernels**: the fusions in the entry computation of its HLO text. Each is
  one kernel launch per step; for an elementwise optimizer step on a TPU,
  one per leaf unless leaves are fused together.
* **bytes accessed**: ``compiled.cost_analysis()["bytes accessed"]``, the
  HBM traffic of a step. An optimizer step is bandwidth bound, so this is
  its run time up to the chip's bandwidth (819 GB/s on a v5e).
* **temporary bytes**: ``compiled.memory_analysis().temp_size_in_bytes``,
  the scratch memory beyond the (donated) arguments and outputs.
* **collectives**: all-reduce, all-gather, reduce-scatter,
  collective-permute and all-to-all in the module, for a sharded step.
* **compile seconds**: the wall and CPU time of ``lower`` and ``compile``.
  Compiling for a TPU runs on this machine's CPU, so these are what a user
  waits at every start of a TPU job (without a compilation cache).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pathlib
import re
import statistics
import time
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

import gradtx
from gradtx._src.tools.bench import cpu
from gradtx._src.tools.bench.command import (BOUND, COMPILE_REPEATS,
                                             DEFAULT_SKIP, MissingDependency)

TOPOLOGY = "v5e:2x2"
ACCELERATOR_TYPE = "v5litepod-4"
TARGET = f"TPU v5e ({ACCELERATOR_TYPE}, topology {TOPOLOGY}), compiled " \
    "ahead of time without a TPU"
MESH_SHAPE = (2, 2)
# The sharded rows: GPT-2 small, every leaf of params, grads and state split
# over the four chips along its largest dimension that divides evenly.
SHARDED = (("gpt2", "adam"),)
# A compile that takes longer than this (CPU seconds) is not repeated: the
# default run stays within half an hour, and the CPU time of a long compile
# varies by a few percent only.
REPEAT_LIMIT_CPU_S = 20.0

# An instruction's opcode follows its (possibly tuple) type and a space.
_COLLECTIVE = re.compile(
    r"\s(all-reduce|all-gather|reduce-scatter|collective-permute|"
    r"all-to-all)(-start)?\(")


def devices() -> list:
  """The four TPU v5e devices of a 2x2 topology, from libtpu alone.

  Raises :class:`MissingDependency` if libtpu is not installed.
  """
  try:
    import libtpu  # noqa: F401
  except ImportError:
    raise MissingDependency(
        "--target tpu-v5e compiles with libtpu, which is not installed: pip "
        "install \"gradtx[bench-tpu]\" (jax[tpu] brings the libtpu that "
        "matches jax)") from None
  # libtpu reads these when it builds the topology: which chip to compile
  # for, and no TPU VM to find (it would look its workers up otherwise).
  os.environ.setdefault("TPU_ACCELERATOR_TYPE", ACCELERATOR_TYPE)
  os.environ.setdefault("TPU_SKIP_MDS_QUERY", "1")
  os.environ.setdefault("TPU_WORKER_HOSTNAMES", "localhost")
  # libtpu takes a machine-wide lock meant for a real TPU; compiling only,
  # several processes (a benchmark and a test) may load it side by side.
  os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
  from jax._src import xla_bridge
  if not xla_bridge.backends_are_initialized():
    # The CPU is the only platform that runs anything here; the TPU is only
    # compiled for. (With libtpu installed JAX would look for a TPU.)
    jax.config.update("jax_platforms", "cpu")
  from jax.experimental import topologies
  topo = topologies.get_topology_desc(platform="tpu", topology_name=TOPOLOGY)
  return list(topo.devices)


# --------------------------------------------------------------------------
# What a compiled executable says.


def entry_computation(hlo: str) -> str:
  """The text of the ENTRY computation of an HLO module."""
  start = hlo.index("\nENTRY ")
  end = hlo.find("\n}", start)
  return hlo[start:end if end >= 0 else len(hlo)]


def count_kernels(hlo: str) -> int:
  """Fusions in the entry computation: kernel launches per step."""
  return len(re.findall(r"\sfusion\(", entry_computation(hlo)))


def count_collectives(hlo: str) -> dict:
  """Collective operations in the whole module, by kind (an asynchronous
  one counts once, at its ``-start``)."""
  out: dict[str, int] = {}
  for m in _COLLECTIVE.finditer(hlo):
    out[m.group(1)] = out.get(m.group(1), 0) + 1
  return out


def figures(compiled) -> dict:
  """Kernels, bytes accessed, temporary bytes and collectives."""
  hlo = compiled.as_text()
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):  # older jax: one dict per computation
    cost = cost[0]
  mem = compiled.memory_analysis()
  collectives = count_collectives(hlo)
  return {
      "kernels": count_kernels(hlo),
      "bytes": int(cost["bytes accessed"]),
      "temp_bytes": int(mem.temp_size_in_bytes),
      "collectives": int(sum(collectives.values())),
      "collective_kinds": collectives,
  }


# --------------------------------------------------------------------------
# Shardings.


def fsdp_spec(shape: tuple, n: int) -> jax.sharding.PartitionSpec:
  """Splits the largest dimension of ``shape`` that ``n`` divides over all
  mesh axes; replicated if none does (scalars, odd sizes)."""
  P = jax.sharding.PartitionSpec
  dims = [i for i, d in enumerate(shape) if d % n == 0 and d >= n]
  if not dims:
    return P()
  best = max(dims, key=lambda i: shape[i])
  spec = [None] * len(shape)
  spec[best] = ("x", "y")
  return P(*spec)


def sharding_rule(devs: list, sharded: bool) -> Callable[[tuple], Any]:
  """shape -> the sharding of a leaf of that shape."""
  if not sharded:
    one = jax.sharding.SingleDeviceSharding(devs[0])
    return lambda shape: one
  mesh = jax.sharding.Mesh(np.array(devs).reshape(MESH_SHAPE), ("x", "y"))
  n = len(devs)
  return lambda shape: jax.sharding.NamedSharding(mesh, fsdp_spec(shape, n))


# --------------------------------------------------------------------------
# Lowering and compiling.


def _abstract(tree: Any, rule) -> Any:
  return jax.tree.map(
      lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype,
                                     sharding=rule(tuple(s.shape))), tree)


def lower(shapes: dict, lib: str, make_tx, rule) -> Any:
  """``jax.jit(step, donate_argnums=(0, 1)).lower(...)`` for one library,
  on a fresh transform and step function (nothing traced before), with
  params, grads and state placed by ``rule`` and kept there."""
  if lib == "fused":
    n = int(sum(np.prod(s) for s in jax.tree.leaves(shapes,
                                                    is_leaf=cpu.is_shape)))
    flat = jax.ShapeDtypeStruct((n,), jnp.float32)
    params, grads = flat, flat
    state = (flat, flat, jax.ShapeDtypeStruct((), jnp.int32))
    step = cpu.fused_adam_step()
  else:
    params = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s, jnp.float32),
                          shapes, is_leaf=cpu.is_shape)
    grads = params
    state = jax.eval_shape(make_tx().init, params)
    apply = gradtx.apply_updates if lib == "gradtx" else optax.apply_updates
    step = cpu.make_step(make_tx(), apply)
  params, state, grads = (_abstract(t, rule) for t in (params, state, grads))
  out = jax.tree.map(lambda s: s.sharding, (params, state))
  jitted = jax.jit(step, donate_argnums=(0, 1), out_shardings=out)
  return jitted.lower(params, state, grads)


def measure(shapes: dict, lib: str, make_tx, rule, repeats: int) -> dict:
  """Lowers and compiles ``repeats`` times (from scratch each time), or once
  if that took over ``REPEAT_LIMIT_CPU_S``; the figures of the executable
  and the median compile times."""
  lower_s, lower_cpu_s, compile_s, compile_cpu_s = [], [], [], []
  fig = None
  for i in range(repeats):
    if i and compile_cpu_s[0] > REPEAT_LIMIT_CPU_S:
      break
    gc.collect()
    t0, c0 = time.perf_counter(), time.process_time()
    # As TPU programs run: 64-bit types off, whatever the caller enabled
    # (with them on, Python scalars in the step would become float64).
    with jax.enable_x64(False):
      lowered = lower(shapes, lib, make_tx, rule)
    t1, c1 = time.perf_counter(), time.process_time()
    compiled = lowered.compile()
    t2, c2 = time.perf_counter(), time.process_time()
    lower_s.append(t1 - t0)
    lower_cpu_s.append(c1 - c0)
    compile_s.append(t2 - t0)
    compile_cpu_s.append(c2 - c0)
    if fig is None:
      fig = figures(compiled)
    del lowered, compiled
  med = statistics.median
  return dict(fig, compile_s=med(compile_s), compile_cpu_s=med(compile_cpu_s),
              lower_s=med(lower_s), lower_cpu_s=med(lower_cpu_s),
              xla_compile_cpu_s=med(compile_cpu_s) - med(lower_cpu_s),
              compiles=len(compile_s))


# --------------------------------------------------------------------------
# Rows.


def row(tree: str, opt: str, a: dict, b: dict, n_leaves: int, n_params: int,
        mesh: str, baseline: str, label: str, other: str) -> dict:
  """One flat row: gradtx (``a``) against ``other`` (``b``)."""
  ratio = lambda k: a[k] / b[k] if b[k] else None
  r = {"tree": tree, "optimizer": opt, "label": label, "mesh": mesh,
       "baseline": baseline, "leaves": n_leaves, "params": n_params}
  for key in ("kernels", "bytes", "temp_bytes", "collectives", "compile_s",
              "compile_cpu_s", "lower_cpu_s", "xla_compile_cpu_s", "lower_s",
              "compiles"):
    r[f"gradtx_{key}"] = a[key]
    r[f"{other}_{key}"] = b[key]
  r["kernels_ratio"] = ratio("kernels")
  r["bytes_ratio"] = ratio("bytes")
  r["compile_cpu_ratio"] = ratio("compile_cpu_s")
  return r


def fmt_bytes(n: float) -> str:
  for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
    if n >= scale:
      return f"{n / scale:.3g} {unit}"
  return f"{n:.0f} B"


def markdown(rows: list[dict]) -> str:
  out = ["| tree | optimizer | mesh | kernels gradtx / optax | bytes per step "
         "gradtx / optax | temp bytes gradtx / optax | compile CPU s gradtx /"
         " optax | compile s gradtx / optax | collectives gradtx / optax |",
         "|---|---|---|---:|---:|---:|---:|---:|---:|"]
  for r in rows:
    o = "fused" if r["optimizer"] == BOUND else "optax"
    out.append(
        f"| {r['tree']} | {r['label']} | {r['mesh']} | "
        f"{r['gradtx_kernels']} / {r[o + '_kernels']} | "
        f"{fmt_bytes(r['gradtx_bytes'])} / {fmt_bytes(r[o + '_bytes'])} | "
        f"{fmt_bytes(r['gradtx_temp_bytes'])} / "
        f"{fmt_bytes(r[o + '_temp_bytes'])} | "
        f"{r['gradtx_compile_cpu_s']:.1f} / {r[o + '_compile_cpu_s']:.1f} | "
        f"{r['gradtx_compile_s']:.1f} / {r[o + '_compile_s']:.1f} | "
        f"{r['gradtx_collectives']} / {r[o + '_collectives']} |")
  return "\n".join(out)


def header(repeats: int, quick: bool) -> dict:
  import libtpu
  m = cpu.machine_info()
  return {
      "target": TARGET, "date": m["time"][:10], "time": m["time"],
      "machine": f"{m['cpu_model']}, {m['cpu_count']} cores "
                 f"({m['cpus_usable']} usable)",
      "loadavg_start": m["loadavg_start"],
      "jax": m["jax"], "jaxlib": m["jaxlib"],
      "libtpu": getattr(libtpu, "__version__", None) or _dist_version("libtpu"),
      "optax": m["optax"], "gradtx": m["gradtx"], "python": m["python"],
      "compile_repeats": repeats, "quick": quick,
      "step": "jax.jit(step, donate_argnums=(0, 1)); step(params, state, "
              "grads) -> (apply_updates(params, updates), state); float32",
  }


def _dist_version(name: str) -> Optional[str]:
  from importlib import metadata
  try:
    return metadata.version(name)
  except metadata.PackageNotFoundError:
    return None


def write(out: pathlib.Path, head: dict, rows: list, bounds: list,
          complete: bool) -> None:
  """The JSON: a header, flat rows, the bound rows and both tables. It is
  rewritten after every row (``complete`` false until the end), so a run
  cut short keeps what it measured."""
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(
      {"header": dict(head, complete=complete), "rows": rows,
       "bound": bounds, "markdown_table": markdown(rows),
       "markdown_bound_table": markdown(bounds) if bounds else ""},
      indent=1) + "\n")


def run(args: argparse.Namespace) -> int:
  """The TPU-AOT benchmark for the options of
  :mod:`gradtx._src.tools.bench.command`."""
  devs = devices()
  log = lambda s: print(s, flush=True)
  repeats = args.compile_repeats or (1 if args.quick else COMPILE_REPEATS)
  opts = args.optimizers or list(cpu.ALL_OPTIMIZERS)
  head = header(repeats, args.quick)
  log(f"target: {TARGET}; {head['machine']}, load average "
      f"{head['loadavg_start']}; jax {head['jax']}, libtpu {head['libtpu']}, "
      f"optax {head['optax']}; {repeats} compile(s) per executable")
  t_start = time.perf_counter()
  # The first compile in a process also sets XLA's TPU compiler up.
  warm = {"a": (8,), "b": (8,)}
  for lib, make in (("gradtx", lambda: gradtx.adam(cpu.LR)),
                    ("optax", lambda: optax.adam(cpu.LR))):
    lower(warm, lib, make, sharding_rule(devs, False)).compile()

  out = pathlib.Path(args.out)
  rows, bounds = [], []
  plans = []
  for t in args.trees:
    plans.append((t, False))
    if not args.quick and any(t == st and o in opts for st, o in SHARDED):
      plans.append((t, True))
  for name, sharded in plans:
    shapes = cpu.TREES[name][0]()
    leaves = jax.tree.leaves(shapes, is_leaf=cpu.is_shape)
    n_params = int(sum(np.prod(s) for s in leaves))
    rule = sharding_rule(devs, sharded)
    mesh = "2x2, FSDP" if sharded else "1 chip"
    log(f"tree {name} ({mesh}): {len(leaves)} leaves, {n_params:,} params")
    cache: dict = {}
    tree_opts = [o for o in opts if args.optimizers or
                 (name, o) not in DEFAULT_SKIP]
    if sharded:
      tree_opts = [o for t, o in SHARDED if t == name and o in tree_opts]
    for opt in tree_opts:
      got = []
      for lib, key, make in cpu.pair(opt):
        if (lib, key) not in cache:
          cache[lib, key] = measure(shapes, lib, make, rule, repeats)
        got.append(cache[lib, key])
      if opt == BOUND:
        label, baseline, other = ("adam vs hand-fused flat Adam",
                                  "one jitted Adam expression on a flat "
                                  "buffer", "fused")
      else:
        label = cpu.ROW_LABEL.get(opt, opt)
        baseline, other = cpu.OPTIMIZERS[opt][2], "optax"
      r = row(name, opt, got[0], got[1], len(leaves), n_params, mesh,
              baseline, label, other)
      (bounds if opt == BOUND else rows).append(r)
      write(out, head, rows, bounds, complete=False)
      o = other
      log(f"  {opt:12s} kernels {r['gradtx_kernels']:5d} / "
          f"{r[o + '_kernels']:5d}  bytes {fmt_bytes(r['gradtx_bytes'])} / "
          f"{fmt_bytes(r[o + '_bytes'])}  compile CPU "
          f"{r['gradtx_compile_cpu_s']:.1f} / {r[o + '_compile_cpu_s']:.1f} s"
          f"  collectives {r['gradtx_collectives']} / "
          f"{r[o + '_collectives']}")
  head["loadavg_end"] = cpu.load_average()
  head["total_runtime_s"] = time.perf_counter() - t_start
  table = markdown(rows)
  print()
  print(table)
  if bounds:
    print()
    print(markdown(bounds))
  print()
  print("kernels: fusions in the compiled step's entry computation; bytes: "
        "cost_analysis()['bytes accessed']; temp: memory_analysis()"
        ".temp_size_in_bytes; compile: lower + compile, median of "
        f"{repeats}, CPU seconds of this process and wall seconds; "
        "collectives: all-reduce, all-gather, reduce-scatter, "
        "collective-permute, all-to-all in the module.")
  print(f"total runtime: {head['total_runtime_s']:.1f} s; load average "
        f"{head['loadavg_start']} -> {head['loadavg_end']}")
  write(out, head, rows, bounds, complete=True)
  print(f"wrote {out}")
  return 0
