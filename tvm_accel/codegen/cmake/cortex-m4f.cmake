# Cortex-M4 with single-precision FPU (Armv7E-M): nucleo-f446re, nrf52840-dk, mps2-an386.
set(TVM_ACCEL_CPU_FLAGS "-mcpu=cortex-m4 -mfloat-abi=hard -mfpu=fpv4-sp-d16")
set(TVM_ACCEL_HAS_FPU ON)
include(${CMAKE_CURRENT_LIST_DIR}/arm-none-eabi.cmake)
