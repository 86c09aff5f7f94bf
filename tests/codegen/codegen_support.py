import shutil
from pathlib import Path

import pytest

SHARED_MODELS = Path(__file__).resolve().parents[2].parent / "shared" / "models"


def need_arm():
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm", "cmake"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (scripts/setup.sh installs it)")


def need_host_cc():
    for tool in ("gcc", "cmake"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")


def shared_model(name: str) -> Path:
    path = SHARED_MODELS / f"{name}.tflite"
    if not path.exists():
        pytest.skip(f"shared model {path} is absent (../shared/models not available)")
    return path
