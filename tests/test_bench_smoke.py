"""The benchmark runs end to end on a tiny tree and writes its JSON, from
the checkout (benchmarks/bench.py) and as `gradtx bench` from an installed
package."""

import importlib.util
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "bench.py"
OPTIONS = ("--target", "--trees", "--optimizers", "--repeats", "--warmup",
           "--compile-workers", "--compile-repeats", "--quick", "--out")


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


# --------------------------------------------------------------------------
# `gradtx bench` from an installed (not editable) package.


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
  """gradtx installed from a copy of the source (a wheel built by pip, no
  benchmarks/ beside it) into a fresh directory; the environment that runs
  it finds only that copy."""
  tmp = tmp_path_factory.mktemp("install")
  src = tmp / "src"
  src.mkdir()
  for name in ("pyproject.toml", "README.md"):
    shutil.copy(ROOT / name, src / name)
  shutil.copytree(ROOT / "gradtx", src / "gradtx",
                  ignore=shutil.ignore_patterns("__pycache__"))
  site = tmp / "site"
  # With setuptools at hand the build needs no network (and is faster);
  # without it, pip fetches the build backend pyproject.toml names.
  offline = (["--no-build-isolation", "--no-index"]
             if importlib.util.find_spec("setuptools") else [])
  subprocess.run(
      [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
       *offline, "--target", str(site), str(src)], check=True,
      capture_output=True, text=True, timeout=600)
  env = dict(os.environ, PYTHONPATH=str(site))
  env.pop("PYTHONHOME", None)
  return site, env


def test_installed_gradtx_bench_help_lists_every_option_from_the_install(
    installed, tmp_path):
  # One interpreter: where gradtx (and the benchmark) come from, then the
  # installed command's `gradtx bench --help` (the script's own start is
  # tested by the quick run below).
  site, env = installed
  code = ("import sys, gradtx, gradtx._src.tools.bench.cpu as b\n"
          "print(gradtx.__file__)\nprint(b.__file__)\n"
          "from gradtx._src.tools.cli import main\n"
          "sys.argv = ['gradtx', 'bench', '--help']\nmain()\n")
  proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                        capture_output=True, text=True)
  assert proc.returncode == 0, proc.stderr[-2000:]
  package, bench, out = proc.stdout.split("\n", 2)
  assert pathlib.Path(package).is_relative_to(site)
  assert pathlib.Path(bench).is_relative_to(site)
  assert not (site / "benchmarks").exists()
  assert out.startswith("usage: gradtx bench")
  for option in OPTIONS:
    assert option in out, option
  assert "rest" not in out.split()
  assert "tpu-v5e" in out and "gradtx[bench-tpu]" in out


def test_installed_gradtx_bench_quick_runs(installed, tmp_path):
  site, env = installed
  proc = subprocess.run([str(site / "bin" / "gradtx"), "bench", "--quick"],
                        cwd=tmp_path, env=env, capture_output=True,
                        text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "checkout" not in proc.stdout + proc.stderr
  data = json.loads((tmp_path / "gradtx-bench" / "results.json").read_text())
  assert data["config"]["quick"] and data["config"]["trees"] == ["tiny"]
  assert [r["optimizer"] for r in data["results"]] == ["adam", "adam_flat"]
  assert all(r["params_finite_after"] for r in data["results"])
  assert data["bandwidth_bound"][0]["bound_ms"] > 0


def test_bench_without_optax_says_what_to_install(monkeypatch, capsys):
  from gradtx._src.tools import cli
  monkeypatch.setitem(sys.modules, "optax", None)  # import optax fails
  assert cli.main(["bench", "--quick"]) == 2
  err = capsys.readouterr().err
  assert "gradtx bench: error:" in err
  assert "optax, which is not installed" in err
  assert 'pip install "gradtx[bench]"' in err


def test_bench_rejects_an_unknown_tree_with_the_choices(capsys):
  from gradtx._src.tools import cli
  with pytest.raises(SystemExit) as e:
    cli.main(["bench", "--trees", "gpt3"])
  assert e.value.code == 2
  assert "unknown tree gpt3; choose from gpt2, resnet50, many_small, tiny" \
      in capsys.readouterr().err
