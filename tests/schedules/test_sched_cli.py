"""``tvm-accel schedule``: table, JSON, and one-line errors."""

from __future__ import annotations

import json

import pytest

from tvm_accel.cli import main


def test_table(capsys):
    assert main(["schedule", "--layer", "conv:N=1,C=64,K=64,P=56,Q=56,R=3,S=3,pad=1", "--method", "cosa-ext"]) == 0
    out = capsys.readouterr().out
    assert "cosa-ext" in out and "L3[WIO]" in out and "%" in out


def test_json_several_methods(capsys):
    assert main(["schedule", "--layer", "matmul:M=64,K=32,N=16", "--layer", "dense:C=128,K=10",
                 "--method", "all", "--json", "--time-limit", "2"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data) == 8
    for r in data:
        assert r["cycles"] > 0 and 0 < r["utilization"] <= 1 and r["mapping"].startswith("L3[WIO]")
        assert r["method"] in ("cosa-ext", "cosa", "heuristic", "exhaustive")
    ext = [r for r in data if r["method"] == "cosa-ext"]
    heu = [r for r in data if r["method"] == "heuristic"]
    assert all(e["cycles"] <= h["cycles"] for e, h in zip(ext, heu))


@pytest.mark.parametrize("argv, msg", [
    (["--layer", "conv:C=64"], "missing P"),
    (["--layer", "conv:C=4,K=4,P=4,Q=4", "--method", "magic"], "unknown method"),
    (["--layer", "conv:C=4,K=4,P=4,Q=4", "--config", "nope"], "unknown Gemmini configuration"),
    (["--layer", "conv:C=4,K=4,P=4,Q=4", "--time-limit", "0"], "time-limit"),
])
def test_errors_are_one_line(capsys, argv, msg):
    assert main(["schedule", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and msg in err and "\n" not in err
