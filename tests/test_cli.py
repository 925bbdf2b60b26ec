"""The gradtx command, run in-process with tiny settings."""

import argparse
import functools
import io
import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

import gradtx
from gradtx._src.tools import cli
from gradtx._src.tools import progress


def _plain(text):
  """No carriage return, no terminal escape: lines a log file can hold."""
  return "\r" not in text and "\x1b" not in text


def test_race_prints_the_table_writes_its_files_and_says_it_overwrites(
    tmp_path, capsys):
  (tmp_path / "race.csv").write_text("an earlier run")
  rc = cli.main(["race", "SGD", "Swats", "--steps", "6", "--batch-size", "8",
                 "--lr", "sgd=0.1", "--out", str(tmp_path)])
  assert rc == 0
  captured = capsys.readouterr()
  out, err = captured.out, captured.err
  assert out.startswith("gradtx race: 2 optimizers (sgd swats), 6 steps")
  table = out[out.index("\noptimizer ") + 1:].splitlines()
  assert {table[1].split()[0], table[2].split()[0]} == {"sgd", "swats"}
  # The notice, the progress lines and each optimizer's summary, all plain.
  assert f"{tmp_path} holds an earlier run; overwriting race.csv" in err
  assert "[100%] swats: training: 12/12 steps" in err
  assert "swats     done:" in err and "did not switch to SGD in 6 steps" in err
  assert _plain(err)
  data = json.loads((tmp_path / "race.json").read_text())
  assert [r["optimizer"] for r in data["results"]] == ["sgd", "swats"]
  assert data["results"][0]["learning_rate"] == 0.1
  run = data["runs"]["sgd"]
  assert len(run["losses"]) == 6
  assert run["eval_steps"] == [0, 1, 2, 3, 4, 5, 6]
  assert len(run["test_accuracy"]) == len(run["eval_seconds"]) == 7
  assert run["eval_seconds"] == sorted(run["eval_seconds"])
  assert (tmp_path / "race.csv").read_text().startswith("optimizer,")
  assert (tmp_path / "race.png").read_bytes()[:4] == b"\x89PNG"


def test_race_reports_when_swats_switched(tmp_path, capsys, monkeypatch):
  # A switch from the first allowed step, to check the report, not SWATS.
  monkeypatch.setitem(cli.OPTIMIZERS, "swats", cli.OPTIMIZERS["swats"]._replace(
      make=lambda lr: gradtx.swats(lr, switch_rtol=0.99, min_adam_steps=2)))
  assert cli.main(["race", "swats", "--steps", "4", "--batch-size", "8",
                   "--out", str(tmp_path)]) == 0
  err = capsys.readouterr().err
  assert "switched from Adam to SGD at step 2 (SGD learning rate" in err
  result = json.loads((tmp_path / "race.json").read_text())["results"][0]
  assert result["switch_step"] == 2 and result["sgd_learning_rate"] > 0


def test_lr_find_shows_progress_and_writes_its_plot_and_table(tmp_path,
                                                              capsys):
  (tmp_path / "lr_find.png").write_bytes(b"old")
  rc = cli.main(["lr-find", "--optimizer", "SGD", "--steps", "12",
                 "--batch-size", "8", "--out", str(tmp_path)])
  assert rc == 0
  captured = capsys.readouterr()
  assert captured.out.startswith("gradtx lr-find: sgd, learning rate from "
                                 "1e-06 to 10 over 12 steps")
  assert "suggested learning rate" in captured.out
  err = captured.err
  assert "overwriting lr_find.png" in err
  assert err.index("compiling the step...") < err.index("%] lr ")
  assert "[100%] lr 1.00e+01, loss " in err
  assert _plain(err)
  assert (tmp_path / "lr_find.png").read_bytes()[:4] == b"\x89PNG"
  rows = (tmp_path / "lr_find.csv").read_text().splitlines()
  assert rows[0] == "learning_rate,loss,smoothed_loss" and len(rows) >= 2


def test_progress_is_a_bar_on_a_terminal_and_plain_lines_elsewhere():
  pytest.importorskip("rich")
  for terminal in (False, True):
    stream = io.StringIO()
    with progress.Progress(100, "compiling", stream=stream,
                               terminal=terminal) as bar:
      for k in range(10):
        bar.advance(10, "adam: training")
      bar.log("adam done")
    text = stream.getvalue()
    assert bar.terminal == terminal
    assert "adam done" in text
    if terminal:
      assert not _plain(text)  # redrawn in place
    else:
      lines = text.splitlines()
      assert lines[0] == "  compiling..."
      assert [l.split("]")[0] for l in lines[1:6]] == [
          "  [ 20%", "  [ 40%", "  [ 60%", "  [ 80%", "  [100%"]
      assert "about" in lines[1] and "left" in lines[1]  # the ETA
      assert lines[6] == "adam done" and len(lines) == 7


def test_a_stream_that_is_not_a_tty_gets_plain_lines():
  assert not progress.Progress(10, stream=io.StringIO()).terminal


def test_list_groups_every_named_optimizer_by_family_with_its_paper(capsys):
  assert cli.main(["list"]) == 0
  lines = capsys.readouterr().out.splitlines()
  family = None
  seen = {}
  for line in lines:
    if line in cli.FAMILIES or line.split(" (")[0] in cli.FAMILIES:
      family = line.split(" (")[0]
    elif line.startswith("  ") and family:
      seen[line.split()[0]] = (family, line)
  assert set(seen) == set(cli.OPTIMIZERS)
  for name in ("sgdw", "nadamw", "noisy_sgd", "lbfgs", "swats", "ranger"):
    assert name in seen
  for name, o in cli.OPTIMIZERS.items():
    assert seen[name][0] == o.family
    assert o.paper in seen[name][1]
  # Every named optimizer of the package is in the table.
  named = {"sgd", "sgdw", "noisy_sgd", "adagrad", "rmsprop", "adadelta",
           "rprop", "adam", "adamw", "adamax", "nadam", "nadamw", "amsgrad",
           "radam", "adabound", "amsbound", "ranger", "swats", "lookahead",
           "lbfgs", "gauss_newton", "levenberg_marquardt", "vsgd"}
  assert named <= set(cli.OPTIMIZERS)


RACEABLE = [n for n, o in cli.OPTIMIZERS.items() if o.make is not None]


@functools.cache
def _first_updates():
  """Each raceable entry built at its race rate and stepped once, all in
  one compiled program: ``name -> updates``."""
  params = {"w": jnp.ones(3, jnp.float32)}

  @jax.jit
  def step(params):
    out = {}
    for name in RACEABLE:
      tx = cli.OPTIMIZERS[name].make(cli.OPTIMIZERS[name].lr)
      out[name], _ = tx.update(params, tx.init(params), params)
    return out

  return step(params)


@pytest.mark.parametrize("name", RACEABLE)
def test_every_raceable_entry_builds_and_steps(name):
  updates = _first_updates()[name]["w"]
  assert updates.dtype == jnp.float32 and updates.shape == (3,)
  assert jnp.all(jnp.isfinite(updates)) and jnp.any(updates != 0), updates


@pytest.mark.parametrize("typed,key", [("Adam", "adam"), ("ADAMW", "adamw"),
                                       ("noisy-sgd", "noisy_sgd"),
                                       ("Noisy_SGD", "noisy_sgd")])
def test_names_are_case_insensitive(typed, key):
  assert cli._resolve(typed) == key


def test_every_option_has_help_with_its_default(capsys):
  sub = next(a for a in cli.parser()._actions
             if isinstance(a, argparse._SubParsersAction))
  for command in ("race", "lr-find"):
    for action in sub.choices[command]._actions:
      if isinstance(action, argparse._HelpAction):
        continue
      assert action.help and "default" in action.help, (command,
                                                        action.dest)
  with pytest.raises(SystemExit) as e:
    cli.main(["lr-find", "--help"])
  assert e.value.code == 0
  out = " ".join(capsys.readouterr().out.split())  # unwrapped
  for text in ("--min-lr LR", "(default: 1e-06)", "(default: 10)",
               "(default: 120)", "(default: 64)", "(default: 0)",
               "(default: gradtx-lr-find)", "(default: adam)",
               "(default: 0.9"):
    assert text in out, text


@pytest.mark.parametrize("argv,message", [
    (["race", "Adamm"], "unknown optimizer 'Adamm'; did you mean 'adam', "),
    (["race", "sgd", "frobnicate"], "unknown optimizer 'frobnicate'; choose "
     "from sgd, nesterov"),
    (["lr-find", "--optimizer", "nadamm"], "did you mean 'nadam'"),
    (["race", "lbfgs"], "lbfgs (L-BFGS with a zoom line search) needs the "
     "full-batch loss"),
    (["race", "adam", "--lr", "adam"], "NAME=VALUE"),
    (["race", "adam", "--lr", "sgd=0.1"], "sgd is not in the race adam"),
    (["race", "adam", "--lr", "adam=-1"], "must be > 0"),
    (["race", "--batch-size", "5000"], "the training set has 1437 digits"),
    (["lr-find", "--min-lr", "1", "--max-lr", "0.1"], "--min-lr"),
    (["lr-find", "--smoothing", "1"], "--smoothing must be in [0, 1)"),
    (["lr-find", "--steps", "1"], "--steps must be at least 2"),
    (["lr-find", "--steps", "0"], "--steps must be at least 2"),
])
def test_bad_arguments_exit_2_with_one_clear_line(argv, message, capsys):
  assert cli.main(argv) == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and message in err, err
  assert err.startswith(f"gradtx {argv[0]}: error: ")


def test_out_must_be_a_folder(tmp_path, capsys):
  f = tmp_path / "file"
  f.write_text("")
  assert cli.main(["race", "adam", "--steps", "2", "--out", str(f)]) == 2
  assert "that is a file, not a directory" in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [
    (["race", "--steps", "0"], "must be >= 1"),
    (["frobnicate"], "invalid choice")])
def test_argparse_errors_exit_2(argv, message, capsys):
  with pytest.raises(SystemExit) as e:
    cli.main(argv)
  assert e.value.code == 2 and message in capsys.readouterr().err


def test_a_closed_pipe_ends_the_command_quietly(monkeypatch, capsys):
  """`gradtx list | head -1`: the reader closes the pipe; the command
  stops with status 1 and no traceback."""

  class ClosedPipe(io.StringIO):

    def write(self, text):
      raise BrokenPipeError(32, "Broken pipe")

  monkeypatch.setattr(sys, "stdout", ClosedPipe())
  assert cli.main(["list"]) == 1
  assert capsys.readouterr().err == ""


def test_python_m_gradtx_exits_2_without_a_traceback_or_the_cli_extras():
  # As `python -m gradtx race nosuch`, in a fresh interpreter: also shows
  # that the package and the command's start import no plotting or
  # progress library (they are extras, loaded when a run needs them).
  code = ("import runpy, sys\n"
          "sys.argv = ['gradtx', 'race', 'nosuch']\n"
          "try:\n"
          "  runpy.run_module('gradtx', run_name='__main__')\n"
          "except SystemExit as e:\n"
          "  print(e.code, [m for m in ('rich', 'tqdm', 'matplotlib', 'flax')"
          " if m in sys.modules])\n")
  proc = subprocess.run([sys.executable, "-c", code], capture_output=True,
                        text=True)
  assert proc.stdout.strip() == "2 []", proc.stdout + proc.stderr
  assert proc.stderr.startswith("gradtx race: error: unknown optimizer "
                                "'nosuch'")
  assert "Traceback" not in proc.stderr
