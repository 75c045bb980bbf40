# The K/V data plane (net/data_plane.h and its UCX and loopback implementations), added to
# runahead_net; net/CMakeLists.txt includes this file once the target exists.
target_sources(runahead_net PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/data_plane.cpp
  ${CMAKE_CURRENT_LIST_DIR}/direct_write_data_plane.cpp
  ${CMAKE_CURRENT_LIST_DIR}/host_peer_memory.cpp
  ${CMAKE_CURRENT_LIST_DIR}/shaped_link_data_plane.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cuda_ipc_peer_memory.cpp
  ${CMAKE_CURRENT_LIST_DIR}/loopback_data_plane.cpp
  ${CMAKE_CURRENT_LIST_DIR}/ucx_data_plane.cpp
  ${CMAKE_CURRENT_LIST_DIR}/ucx_wire.cpp)
target_link_libraries(runahead_net PUBLIC runahead_core fmt::fmt PRIVATE ucx::ucp ucx::ucs)

# Direct writes between GPUs of one host go through CUDA IPC where this build has CUDA.
if(RUNAHEAD_HAVE_CUDA)
  target_compile_definitions(runahead_net PRIVATE RUNAHEAD_HAVE_CUDA)
  target_link_libraries(runahead_net PRIVATE CUDA::cudart)
endif()
