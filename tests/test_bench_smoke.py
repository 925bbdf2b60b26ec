"""benchmarks/bench.py runs end to end on a tiny tree and writes its JSON."""

import importlib.util
import json
import pathlib

BENCH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "bench.py"


def load_bench():
  spec = importlib.util.spec_from_file_location("gradtx_bench", BENCH)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_bench_tiny_quick_writes_the_expected_json(tmp_path, capsys):
  bench = load_bench()
  out = tmp_path / "results.json"
  # A subset that still covers a shared baseline (adabound and adam_bf16
  # reuse optax.adam's executable) and the fused bandwidth bound.
  rc = bench.main(["--trees", "tiny", "--quick", "--optimizers", "adam",
                   "sgd", "adabound", "adam_bf16", "bound", "--out",
                   str(out)])
  assert rc == 0
  printed = capsys.readouterr().out
  assert "| tree | optimizer | gradtx step ms | optax step ms | ratio |" \
      in printed
  data = json.loads(out.read_text())
  assert set(data) >= {"machine", "config", "trees", "results",
                       "bandwidth_bound", "total_runtime_s"}
  for key in ("cpu_model", "cpu_count", "jax", "backend"):
    assert key in data["machine"]
  assert data["trees"]["tiny"]["leaves"] == 50
  assert data["trees"]["tiny"]["params"] == 50 * 64
  rows = {r["optimizer"]: r for r in data["results"]}
  assert list(rows) == ["adam", "sgd", "adabound", "adam_bf16"]
  for r in rows.values():
    for key in ("gradtx_ms", "optax_ms", "ratio", "gradtx_compile_s",
                "optax_compile_s", "gradtx_state_bytes_per_param"):
      assert r[key] > 0, (r["optimizer"], key)
    assert r["params_finite_after"]
  # float32 even though the test suite enables x64: adam keeps two float32
  # moments (plus a 4-byte count shared by the whole tree).
  assert abs(rows["adam"]["gradtx_state_bytes_per_param"] - 8.0) < 0.01
  assert abs(rows["adam_bf16"]["gradtx_state_bytes_per_param"] - 4.0) < 0.01
  assert rows["adabound"]["optax_compile_reused_from"] == "adam"
  (bound,) = data["bandwidth_bound"]
  assert bound["gradtx_over_bound"] > 0 and bound["bound_ms"] > 0
