# Builds one generated model package (tvm_accel.codegen emitter output) into an executable
# `model` that runs the package's harness. Included by the root CMakeLists.txt when
# -DTVM_ACCEL_MODEL_DIR=<package> is given.
#
# Host:      cmake -S <repo> -B <build> -DTVM_ACCEL_MODEL_DIR=<package>
# Cortex-M:  add -DCMAKE_TOOLCHAIN_FILE=tvm_accel/codegen/cmake/<cpu>.cmake and the board's
#            memory map: -DTVM_ACCEL_BOARD=<name> -DTVM_ACCEL_FLASH_ORIGIN=0x.. -DTVM_ACCEL_FLASH_SIZE=..
#            -DTVM_ACCEL_RAM_ORIGIN=0x.. -DTVM_ACCEL_RAM_SIZE=.. [-DTVM_ACCEL_STACK_SIZE=..]
# Every object is compiled with -fstack-usage and -fcallgraph-info=su, so tvm_accel.cortexm can
# compute the worst-case stack over the call graph.
cmake_minimum_required(VERSION 3.20)

set(TVM_ACCEL_CODEGEN_DIR ${CMAKE_CURRENT_LIST_DIR}/..)
set(TVM_ACCEL_RUNTIME_DIR ${TVM_ACCEL_CODEGEN_DIR}/runtime)
get_filename_component(TVM_ACCEL_MODEL_DIR "${TVM_ACCEL_MODEL_DIR}" ABSOLUTE)
if(NOT EXISTS ${TVM_ACCEL_MODEL_DIR}/model.c)
  message(FATAL_ERROR "TVM_ACCEL_MODEL_DIR=${TVM_ACCEL_MODEL_DIR} has no model.c (not a generated model package)")
endif()
set(TVM_ACCEL_OPT_FLAGS "-O2" CACHE STRING "optimisation flags of the model build")
set(TVM_ACCEL_STACK_SIZE 4096 CACHE STRING "bytes reserved for the stack (Cortex-M)")

set(TVM_ACCEL_MODEL_SOURCES ${TVM_ACCEL_MODEL_DIR}/model.c ${TVM_ACCEL_MODEL_DIR}/weights.c
  ${TVM_ACCEL_MODEL_DIR}/kernels.c)
set(TVM_ACCEL_SOURCES
  ${TVM_ACCEL_MODEL_SOURCES}
  ${TVM_ACCEL_RUNTIME_DIR}/tvm_backend.c
  ${TVM_ACCEL_RUNTIME_DIR}/harness.c)
if(TVM_ACCEL_CROSS_CORTEX_M)
  list(APPEND TVM_ACCEL_SOURCES ${TVM_ACCEL_RUNTIME_DIR}/startup_cortexm.c ${TVM_ACCEL_RUNTIME_DIR}/semihost.c)
else()
  list(APPEND TVM_ACCEL_SOURCES ${TVM_ACCEL_RUNTIME_DIR}/host_io.c)
endif()

add_executable(model ${TVM_ACCEL_SOURCES})
target_include_directories(model PRIVATE ${TVM_ACCEL_MODEL_DIR} ${TVM_ACCEL_RUNTIME_DIR})
# Exact float: no fast-math, no fused multiply-add contraction.
target_compile_options(model PRIVATE ${TVM_ACCEL_OPT_FLAGS} -std=gnu11 -ffp-contract=off -fno-fast-math
  -ffunction-sections -fdata-sections -fstack-usage -fcallgraph-info=su
  -Wall -Wno-unused-variable -Wno-unused-but-set-variable -Wno-unused-function)
target_link_libraries(model PRIVATE m)

if(TVM_ACCEL_CROSS_CORTEX_M)
  foreach(v TVM_ACCEL_FLASH_ORIGIN TVM_ACCEL_FLASH_SIZE TVM_ACCEL_RAM_ORIGIN TVM_ACCEL_RAM_SIZE)
    if(NOT DEFINED ${v})
      message(FATAL_ERROR "Cortex-M model build needs -D${v}=... (the board's memory map)")
    endif()
  endforeach()
  if(NOT DEFINED TVM_ACCEL_BOARD)
    set(TVM_ACCEL_BOARD "custom")
  endif()
  set(TVM_ACCEL_LINKER_SCRIPT ${CMAKE_CURRENT_BINARY_DIR}/${TVM_ACCEL_BOARD}.ld)
  configure_file(${CMAKE_CURRENT_LIST_DIR}/cortex-m.ld.in ${TVM_ACCEL_LINKER_SCRIPT} @ONLY)
  set_target_properties(model PROPERTIES SUFFIX ".elf" LINK_DEPENDS ${TVM_ACCEL_LINKER_SCRIPT})
  target_link_options(model PRIVATE -T${TVM_ACCEL_LINKER_SCRIPT} -Wl,--gc-sections
    -Wl,-Map=${CMAKE_CURRENT_BINARY_DIR}/model.map -Wl,--print-memory-usage)
else()
  target_link_options(model PRIVATE -Wl,--gc-sections)
endif()
