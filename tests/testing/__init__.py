"""Tests of tvm_accel.testing, tvm_accel.reference and tvm_accel.models."""
