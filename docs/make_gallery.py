"""Records what each script of ``examples/`` prints and draws, for the gallery.

    python docs/make_gallery.py                 # every examples/*.py
    python docs/make_gallery.py lbfgs_fit       # only these

For each ``examples/NAME.py`` it runs the script as a user would
(``python examples/NAME.py``, default arguments, from the repository root)
and writes ``docs/gallery/NAME.json``: the script's SHA-256, the command,
what it printed, how long it took, and the figures it drew. A figure is any
matplotlib figure the script shows (``plt.show()``) or leaves open when it
ends; each is saved as ``docs/gallery/NAME-K.png``.

``docs/hooks.py`` turns these records into one page per example at every
build, and ``tests/test_docs.py`` fails when a script has no record or
changed since its record was made (the SHA-256 differs): run this script
again for it. The records are committed because running every example at
each build would take minutes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pathlib
import subprocess
import sys
import time

DOCS = pathlib.Path(__file__).resolve().parent
ROOT = DOCS.parent
EXAMPLES = ROOT / "examples"
GALLERY = DOCS / "gallery"

# Runs one script as __main__ with matplotlib drawing off screen; every
# figure shown or left open is saved next to the record.
_RUNNER = r"""
import runpy, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
saved = []
prefix, script = sys.argv[1], sys.argv[2]
def save_all(*args, **kwargs):
  for num in plt.get_fignums():
    fig = plt.figure(num)
    path = f"{prefix}-{len(saved) + 1}.png"
    fig.savefig(path, dpi=96, metadata={"Software": None})
    saved.append(path)
    plt.close(fig)
plt.show = save_all
sys.argv = [script]
try:
  runpy.run_path(script, run_name="__main__")
finally:
  save_all()
"""


def digest(path: pathlib.Path) -> str:
  return hashlib.sha256(path.read_bytes()).hexdigest()


def record(name: str, timeout: float = 900.0) -> dict:
  script = EXAMPLES / f"{name}.py"
  for old in GALLERY.glob(f"{name}-*.png"):
    old.unlink()
  env = {**os.environ, "PYTHONPATH": os.pathsep.join(
      filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
         "MPLBACKEND": "Agg"}
  start = time.perf_counter()
  proc = subprocess.run(
      [sys.executable, "-c", _RUNNER, str(GALLERY / name),
       str(script.relative_to(ROOT))],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
      check=False)
  seconds = time.perf_counter() - start
  if proc.returncode != 0:
    raise RuntimeError(f"examples/{name}.py failed:\n{proc.stderr}")
  figures = sorted(p.name for p in GALLERY.glob(f"{name}-*.png"))
  rec = {"script": f"examples/{name}.py", "sha256": digest(script),
         "command": f"python examples/{name}.py", "output": proc.stdout,
         "seconds": round(seconds, 1), "figures": figures}
  (GALLERY / f"{name}.json").write_text(json.dumps(rec, indent=1) + "\n")
  return rec


def main(argv=None) -> None:
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("names", nargs="*",
                  help="example names (default: every examples/*.py)")
  args = ap.parse_args(argv)
  names = args.names or sorted(p.stem for p in EXAMPLES.glob("*.py"))
  GALLERY.mkdir(exist_ok=True)
  for name in names:
    rec = record(name)
    print(f"{name}: {rec['seconds']} s, {len(rec['figures'])} figure(s)")


if __name__ == "__main__":
  main()
