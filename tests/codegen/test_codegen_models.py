"""The reference models of ../shared/models as standalone C, against ai-edge-litert: 10 seeded
inputs each, integer outputs bit-exact, float outputs within 1e-5. One small model runs in the
default test run on the host; every model on QEMU (Cortex-M4F) and ResNet-8 on M3, M33 and
M55 are slow tests."""

import numpy as np
import pytest

from tvm_accel.cortexm import build_package, run_build
from tvm_accel.deploy import compile_model

from codegen_support import need_arm, need_host_cc, shared_model

SAMPLES = 10
MODELS = ["aww", "vww", "resnet", "toycar", "person_detect", "micro_speech", "magic_wand"]


def _check(name, board, tmp_path):
    from tvm_accel.reference import TFLiteReference, random_inputs

    path = shared_model(name)
    pkg = compile_model(path, tmp_path / name)
    b = build_package(pkg.dir, board, for_qemu=True)
    ref = TFLiteReference(path)
    ins = random_inputs(ref, SAMPLES, seed=0)
    stacked = [np.stack([s[i] for s in ins]) for i in range(len(ins[0]))]
    res = run_build(b, stacked, timeout=900)
    for s in range(SAMPLES):
        for got, want in zip(res.outputs, ref.run(ins[s])):
            if want.dtype.kind == "f":
                np.testing.assert_allclose(got[s], want, rtol=0, atol=1e-5, err_msg=f"{name} sample {s}")
            else:
                np.testing.assert_array_equal(got[s], want, err_msg=f"{name} sample {s}")
    return b


def test_micro_speech_host(tmp_path):
    need_host_cc()
    _check("micro_speech", "host", tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_model_on_m4f_qemu(name, tmp_path):
    need_arm()
    b = _check(name, "mps2-an386", tmp_path)
    assert b.memory.fits


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_model_on_host(name, tmp_path):
    need_host_cc()
    _check(name, "host", tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("board", ["mps2-an385", "mps2-an505", "mps3-an547", "mps2-an500"])
def test_resnet_on_other_cores(board, tmp_path):
    need_arm()
    _check("resnet", board, tmp_path)
