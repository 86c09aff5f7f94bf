"""Test-model construction and reference helpers.

- ``tflite_builder.TFLiteBuilder``: write .tflite files (int8 / float32) from Python.
- ``tflite_cases``: a catalogue of one-feature models covering every supported operator.
- ``onnx_builder``: ONNX QDQ models and a numpy reference of their semantics.
- ``corrupt``: corrupt and unsupported model files for error tests.
- ``numerics``: float kernels and quantization-parameter choice used for calibration.
The reference interpreter itself lives in ``tvm_accel.reference``.
"""
