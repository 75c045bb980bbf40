# Warning flags shared by every target of the project.
function(runahead_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
      -Wcast-align -Wunused -Woverloaded-virtual -Wimplicit-fallthrough
      -Wswitch-enum>
    $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra --Werror cross-execution-space-call>)
  if(RUNAHEAD_WERROR)
    target_compile_options(${target} PRIVATE
      $<$<COMPILE_LANGUAGE:CXX>:-Werror>
      $<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings -Xcompiler=-Werror>)
  endif()
endfunction()

# runahead_library(NAME SOURCES ... [DEPS ...]) adds the library runahead_NAME; sources include
# their headers as "folder/file.h" from the repository root.
function(runahead_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(runahead_${name} STATIC ${ARG_SOURCES})
  target_include_directories(runahead_${name} PUBLIC ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
  target_link_libraries(runahead_${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  set_target_properties(runahead_${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  runahead_warnings(runahead_${name})
endfunction()

# CUDA flags: sm_90a machine code (wgmma, setmaxnreg) and compute_90 PTX for any later chip.
function(runahead_cuda_target target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:-gencode=arch=compute_90a,code=sm_90a
      -gencode=arch=compute_90,code=compute_90 --expt-relaxed-constexpr -lineinfo>)
endfunction()
