# Sanitizer builds of the whole project and its tests (sanitizers/run_sanitized_tests.sh):
#   -DRUNAHEAD_SANITIZE=address,undefined   ASan + UBSan, every report fatal
#   -DRUNAHEAD_SANITIZE=thread              TSan
# clang only, CPU backend only (nvcc's host code would go uninstrumented). -O1 with line tables
# keeps reports readable while compiling and running faster than the default -O2 -g.
set(RUNAHEAD_SANITIZE "" CACHE STRING
  "Build with these sanitizers (clang): address,undefined or thread; empty for none")

if(RUNAHEAD_SANITIZE)
  if(NOT RUNAHEAD_SANITIZE MATCHES "^(address,undefined|undefined,address|address|undefined|thread)$")
    message(FATAL_ERROR "RUNAHEAD_SANITIZE=${RUNAHEAD_SANITIZE}: use address,undefined or thread")
  endif()
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "RUNAHEAD_SANITIZE needs clang: configure with "
                        "-DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang")
  endif()
  if(RUNAHEAD_FUZZ)
    message(FATAL_ERROR "RUNAHEAD_SANITIZE and RUNAHEAD_FUZZ are separate builds: the fuzz "
                        "targets choose their own sanitizers (fuzz/CMakeLists.txt)")
  endif()
  if(RUNAHEAD_CUDA STREQUAL "ON")
    message(FATAL_ERROR "RUNAHEAD_SANITIZE builds the CPU backend only: drop RUNAHEAD_CUDA=ON")
  endif()
  set(RUNAHEAD_CUDA OFF)
  add_compile_options(-fsanitize=${RUNAHEAD_SANITIZE} -fno-sanitize-recover=all
    -fno-omit-frame-pointer -O1 -gline-tables-only)
  add_link_options(-fsanitize=${RUNAHEAD_SANITIZE})
  message(STATUS "runahead: sanitizers ${RUNAHEAD_SANITIZE}")
endif()
