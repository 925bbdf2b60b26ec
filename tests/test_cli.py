"""The gradtx command, run with tiny settings."""

import json
import subprocess
import sys

import pytest

from gradtx._src import cli


def test_race_prints_the_table_and_writes_csv_json_png(tmp_path, capsys):
  rc = cli.main(["race", "sgd", "adabound", "--steps", "6", "--batch-size",
                 "8", "--lr", "sgd=0.1", "--out", str(tmp_path)])
  assert rc == 0
  out = capsys.readouterr().out
  table = out[out.index("\noptimizer ") + 1:].splitlines()
  assert {table[1].split()[0], table[2].split()[0]} == {"sgd", "adabound"}
  data = json.loads((tmp_path / "race.json").read_text())
  assert [r["optimizer"] for r in data["results"]] == ["sgd", "adabound"]
  assert data["results"][0]["learning_rate"] == 0.1
  assert len(data["losses"]["sgd"]) == 6
  assert (tmp_path / "race.csv").read_text().startswith("optimizer,")
  assert (tmp_path / "race.png").read_bytes()[:4] == b"\x89PNG"


def test_lr_find_writes_its_plot(tmp_path, capsys):
  rc = cli.main(["lr-find", "--steps", "12", "--batch-size", "8", "--out",
                 str(tmp_path)])
  assert rc == 0
  assert "suggested learning rate" in capsys.readouterr().out
  assert (tmp_path / "lr_find.png").exists()


def test_list_names_every_optimizer_with_a_paper(capsys):
  assert cli.main(["list"]) == 0
  out = capsys.readouterr().out
  for name in cli.OPTIMIZERS:
    assert any(line.startswith(name + " ") for line in out.splitlines())


@pytest.mark.parametrize("argv,message", [
    (["race", "nosuch"], "unknown optimizer"),
    (["race", "adam", "--lr", "adam"], "NAME=VALUE"),
    (["race", "adam", "--lr", "sgd=0.1"], "not in the race"),
    (["race", "--steps", "0"], "must be >= 1"),
    (["lr-find", "--min-lr", "1", "--max-lr", "0.1"], "min-lr"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_arguments_exit_2_with_one_clear_line(argv, message):
  proc = subprocess.run([sys.executable, "-m", "gradtx", *argv],
                        capture_output=True, text=True)
  assert proc.returncode == 2
  assert message in proc.stderr
  assert "Traceback" not in proc.stderr
