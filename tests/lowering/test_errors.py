"""Bad input gives one clear line naming the problem, never a traceback; an operator the
integer lowering cannot express stays a float island that the summary reports."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tvm_accel.errors import TvmAccelError
from tvm_accel.frontend import load
from tvm_accel.summary import format_summary, summary
from tvm_accel.testing.corrupt import CORRUPT_INPUTS

FALLBACK = {"unsupported_builtin_tanh"}
ERRORS = [c for c in CORRUPT_INPUTS if c.name not in FALLBACK]


@pytest.mark.parametrize("case", ERRORS, ids=lambda c: c.name)
def test_bad_model_raises_clear_error(case, tmp_path):
    path = case.write(tmp_path)
    with pytest.raises(TvmAccelError) as err:
        load(path)
    message = str(err.value)
    assert "\n" not in message.strip()
    assert case.mentioned_in(message), message


@pytest.mark.parametrize("case", ERRORS[:6], ids=lambda c: c.name)
def test_cli_prints_one_line_without_traceback(case, tmp_path):
    path = case.write(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "tvm_accel", "info", str(path)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    assert case.mentioned_in(lines[-1])


def test_unsupported_integer_operator_is_reported_float_fallback(tmp_path):
    case = next(c for c in CORRUPT_INPUTS if c.name == "unsupported_builtin_tanh")
    model = load(case.write(tmp_path))
    assert not model.report.exact
    assert any(op == "tanh" for op, _ in model.report.float_ops)
    text = format_summary(summary(model))
    assert "float fallbacks" in text and "tanh" in text
