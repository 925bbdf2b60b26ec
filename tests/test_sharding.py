"""Sharded state and steps on a 4x2 mesh of virtual CPU devices.

The device count must be set before jax is imported, so the checks run in a
subprocess (``tests/sharding_check.py``; see its docstring) with
``XLA_FLAGS=--xla_force_host_platform_device_count=8``. For every optimizer
of the registry, with explicit and with automatic mesh axes: ``init`` (eager
and jitted) gives every state buffer its param's sharding; a jitted step
keeps the shardings, compiles once and gives the single-device numbers.
"""

import os
import pathlib
import subprocess
import sys

from registry import SPECS

SCRIPT = pathlib.Path(__file__).with_name("sharding_check.py")

# Less LLVM optimisation: the checks compile three programs that hold every
# registered optimizer, and run each only three times. The single-device
# reference is compiled with the same flags.
FLAGS = ("--xla_force_host_platform_device_count=8 "
         "--xla_backend_optimization_level=0 "
         "--xla_llvm_disable_expensive_passes=true")


def test_every_optimizer_follows_the_params_sharding():
  # After the suite's own flags (tests/conftest.py), which it keeps.
  flags = " ".join(f for f in (os.environ.get("XLA_FLAGS"), FLAGS) if f)
  env = dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu")
  result = subprocess.run([sys.executable, str(SCRIPT)], env=env,
                          capture_output=True, text=True, timeout=600)
  out = result.stdout
  assert result.returncode == 0, f"{out}\n{result.stderr[-3000:]}"
  checked = set(out.split("\n"))
  for mode in ("explicit", "auto"):
    missing = [s.name for s in SPECS if f"OK {mode} {s.name}" not in checked]
    assert not missing, f"{mode} axes: not checked: {missing}\n{out}"
