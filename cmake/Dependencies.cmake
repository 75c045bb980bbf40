# Third-party packages, all from Debian 12 (deploy/bootstrap.sh installs them).
find_package(Threads REQUIRED)
find_package(OpenMP REQUIRED)
find_package(PkgConfig REQUIRED)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(OpenSSL REQUIRED)  # libcrypto: SHA-256 of model files
find_package(CLI11 REQUIRED)
find_package(GTest REQUIRED)
find_package(CapnProto REQUIRED)
find_package(ucx REQUIRED)
# libcrypto: HMAC-SHA-256 and random nonces of the control plane's authentication.
find_package(OpenSSL REQUIRED)
pkg_check_modules(OPENBLAS REQUIRED IMPORTED_TARGET openblas)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
pkg_check_modules(SENTENCEPIECE REQUIRED IMPORTED_TARGET sentencepiece)

# Asio is header-only and ships no CMake config.
find_path(ASIO_INCLUDE_DIR asio.hpp REQUIRED)
add_library(runahead_asio INTERFACE)
target_include_directories(runahead_asio SYSTEM INTERFACE ${ASIO_INCLUDE_DIR})
target_compile_definitions(runahead_asio INTERFACE ASIO_STANDALONE ASIO_NO_DEPRECATED)
target_link_libraries(runahead_asio INTERFACE Threads::Threads)
