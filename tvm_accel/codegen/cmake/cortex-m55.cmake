# Cortex-M55 with FPU and Helium/MVE (Armv8.1-M Mainline): Corstone-300, mps3-an547.
set(TVM_ACCEL_CPU_FLAGS "-mcpu=cortex-m55 -mfloat-abi=hard")
set(TVM_ACCEL_HAS_FPU ON)
include(${CMAKE_CURRENT_LIST_DIR}/arm-none-eabi.cmake)
