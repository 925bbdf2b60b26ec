"""`gradtx bench --target tpu-v5e`: the step compiled for a TPU v5e on a
machine without one.

The compiling tests need libtpu (the bench-tpu extra) and are skipped where
it is not installed; the HLO parsing below them runs everywhere.
"""

import importlib.util
import json

import jax
import pytest

import gradtx
from gradtx._src.tools.bench import command, tpu

optax = pytest.importorskip("optax")

HAS_LIBTPU = importlib.util.find_spec("libtpu") is not None
needs_libtpu = pytest.mark.skipif(
    not HAS_LIBTPU, reason="libtpu is not installed: the TPU-AOT benchmark "
    "needs the bench-tpu extra (pip install \"gradtx[bench-tpu]\"), which "
    "CI does not install")

HLO = """HloModule jit_step, is_scheduled=true

%fused_computation (p: f32[64]) -> f32[64] {
  %p = f32[64]{0} parameter(0)
  ROOT %n = f32[64]{0} negate(%p)
}

%wrapped (q: f32[64]) -> f32[64] {
  %q = f32[64]{0} parameter(0)
  %inner = f32[64]{0} fusion(%q), kind=kLoop, calls=%fused_computation
  ROOT %ar = f32[64]{0} all-reduce(%inner), replica_groups={}
}

ENTRY %main (a: f32[64], b: f32[64]) -> (f32[64], f32[64]) {
  %a = f32[64]{0} parameter(0)
  %b = f32[64]{0} parameter(1)
  %f1 = f32[64]{0} fusion(%a), kind=kLoop, calls=%fused_computation
  %f2 = f32[64]{0} fusion(%b), kind=kLoop, calls=%fused_computation
  %ags = (f32[16]{0}, f32[64]{0}) all-gather-start(%f2), dimensions={0}
  %agd = f32[64]{0} all-gather-done(%ags)
  %rs = f32[16]{0} reduce-scatter(%agd), dimensions={0}
  ROOT %t = (f32[64]{0}, f32[64]{0}) tuple(%f1, %agd)
}
"""


def test_kernels_are_the_fusions_of_the_entry_computation():
  # The fusion inside %wrapped is not a kernel launch of the step.
  assert tpu.count_kernels(HLO) == 2


def test_collectives_count_each_once_by_kind():
  assert tpu.count_collectives(HLO) == {"all-reduce": 1, "all-gather": 1,
                                        "reduce-scatter": 1}


def test_fsdp_spec_splits_the_largest_dimension_that_divides():
  P = jax.sharding.PartitionSpec
  assert tpu.fsdp_spec((50257, 768), 4) == P(None, ("x", "y"))
  assert tpu.fsdp_spec((768, 3072), 4) == P(None, ("x", "y"))
  assert tpu.fsdp_spec((3072,), 4) == P(("x", "y"))
  assert tpu.fsdp_spec((7, 5), 4) == P()
  assert tpu.fsdp_spec((), 4) == P()


def test_missing_libtpu_says_what_to_install(monkeypatch):
  import builtins
  original = builtins.__import__

  def no_libtpu(name, *args, **kwargs):
    if name == "libtpu":
      raise ImportError("No module named 'libtpu'")
    return original(name, *args, **kwargs)

  monkeypatch.setattr(builtins, "__import__", no_libtpu)
  with pytest.raises(command.MissingDependency,
                     match=r"libtpu, which is not installed: pip install "
                     r"\"gradtx\[bench-tpu\]\""):
    tpu.devices()


# --------------------------------------------------------------------------
# Compiled for the TPU (libtpu).

SHAPES = {"w": (128, 256), "b": (256,), "small": {f"p{i}": (64,)
                                                   for i in range(6)}}


@pytest.fixture(scope="module")
def devices():
  return tpu.devices()


@needs_libtpu
def test_tpu_aot_compiles_and_reports_the_figures(devices):
  rule = tpu.sharding_rule(devices, sharded=False)
  assert "TPU" in devices[0].device_kind or devices[0].platform == "tpu"
  g = tpu.measure(SHAPES, "gradtx", lambda: gradtx.adam(1e-3), rule, 2)
  o = tpu.measure(SHAPES, "optax", lambda: optax.adam(1e-3), rule, 1)
  for r in (g, o):
    # One elementwise kernel per leaf: 8 leaves.
    assert r["kernels"] == 8
    assert r["bytes"] > 7 * 4 * (128 * 256 + 256 + 6 * 64)
    assert r["temp_bytes"] >= 0
    assert r["collectives"] == 0
    assert r["compile_cpu_s"] > 0 and r["compile_s"] > 0
  assert g["compiles"] == 2 and o["compiles"] == 1
  assert g["bytes"] <= 1.01 * o["bytes"]
  # flatten concatenates the leaves of at most 2**14 entries: fewer kernels.
  f = tpu.measure(SHAPES, "gradtx", lambda: gradtx.flatten(
      gradtx.adam(1e-3), max_leaf_size=2 ** 14), rule, 1)
  assert f["kernels"] < 8


@needs_libtpu
def test_sharded_step_counts_the_collectives(devices):
  rule = tpu.sharding_rule(devices, sharded=True)
  adam = tpu.measure(SHAPES, "gradtx", lambda: gradtx.adam(1e-3), rule, 1)
  assert adam["collectives"] == 0  # elementwise on each shard
  # The global norm sums over every shard: one all-reduce at least.
  clipped = tpu.measure(SHAPES, "gradtx", lambda: gradtx.chain(
      gradtx.clip_by_global_norm(1.0), gradtx.adam(1e-3)), rule, 1)
  assert clipped["collective_kinds"].get("all-reduce", 0) >= 1


@needs_libtpu
def test_quick_run_writes_a_header_and_flat_rows(tmp_path, capsys):
  out = tmp_path / "results_tpu.json"
  assert command.main(["--target", "tpu-v5e", "--quick", "--out",
                       str(out)]) == 0
  assert "| tree | optimizer | mesh | kernels gradtx / optax |" in \
      capsys.readouterr().out
  data = json.loads(out.read_text())
  head = data["header"]
  for key in ("target", "machine", "date", "jax", "libtpu", "optax",
              "gradtx", "loadavg_start", "loadavg_end"):
    assert head[key] is not None, key
  assert head["complete"]
  assert [r["optimizer"] for r in data["rows"]] == ["adam", "adam_flat"]
  for r in data["rows"]:
    assert all(not isinstance(v, (dict, list)) for v in r.values()), r
    assert r["tree"] == "tiny" and r["leaves"] == 50
    assert r["gradtx_kernels"] > 0 and r["optax_kernels"] == 50
  (bound,) = data["bound"]
  assert bound["fused_kernels"] == 1
