# Every dependency comes from Debian's packages (scripts/install-deps.sh installs them).
find_package(Threads REQUIRED)
find_package(MPI REQUIRED COMPONENTS CXX)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(CLI11 REQUIRED)
find_package(Boost 1.74 REQUIRED)           # Asio and Beast are header-only
find_package(prometheus-cpp CONFIG REQUIRED)
find_package(OpenSSL 1.1.1 REQUIRED)        # HTTPS of `tessera serve` (boost::asio::ssl)
find_package(PkgConfig REQUIRED)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
# OpenBLAS's pthread build: its own thread pool, f32 GEMMs for the CPU backend.
find_path(TESSERA_CBLAS_INCLUDE cblas.h PATHS /usr/include/x86_64-linux-gnu/openblas-pthread
          /usr/include/openblas /usr/include/x86_64-linux-gnu REQUIRED)
find_library(TESSERA_OPENBLAS_LIB NAMES openblas REQUIRED)
add_library(tessera_blas INTERFACE)
target_include_directories(tessera_blas SYSTEM INTERFACE "${TESSERA_CBLAS_INCLUDE}")
target_link_libraries(tessera_blas INTERFACE "${TESSERA_OPENBLAS_LIB}")
if(TESSERA_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
