# Build options shared by every target.
set(CMAKE_CXX_STANDARD 20)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)
set(CMAKE_EXPORT_COMPILE_COMMANDS ON)
set(CMAKE_POSITION_INDEPENDENT_CODE ON)
if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE Release CACHE STRING "Build type" FORCE)
endif()

option(TESSERA_BUILD_TESTS "Build the tests" ON)
option(TESSERA_BUILD_FUZZERS "Build libFuzzer targets (needs clang)" OFF)
option(TESSERA_WERROR "Treat warnings as errors (on in CI)" OFF)
set(TESSERA_SANITIZE "" CACHE STRING "Sanitizers to build with: empty, address, undefined or address,undefined")
set(TESSERA_CUDA "AUTO" CACHE STRING "CUDA backend: AUTO (when nvcc is found), ON (required) or OFF")
set_property(CACHE TESSERA_CUDA PROPERTY STRINGS AUTO ON OFF)

# ccache when present: CI's cold build stays short and warm rebuilds are nearly free.
find_program(TESSERA_CCACHE ccache)
if(TESSERA_CCACHE)
  set(CMAKE_C_COMPILER_LAUNCHER "${TESSERA_CCACHE}")
  set(CMAKE_CXX_COMPILER_LAUNCHER "${TESSERA_CCACHE}")
  set(CMAKE_CUDA_COMPILER_LAUNCHER "${TESSERA_CCACHE}")
endif()

# CUDA: enabled automatically when nvcc is found. Every .cu compiles in every build with CUDA on,
# whether or not this machine has a GPU.
# Required (a configure error, never a silent CPU-only build) with TESSERA_CUDA=ON, and in CI (environment CI=true,
# as .ci/run sets) on a machine where nvcc is found: there AUTO acts as ON, NCCL must be found too, and at the end of
# configuration every .cu file of the tree must belong to a target (tessera_check_cuda_sources below).
set(TESSERA_HAVE_CUDA OFF)
set(TESSERA_CUDA_REQUIRED OFF)
set(TESSERA_CUDA_CI OFF)
if(NOT TESSERA_CUDA STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER)
    find_program(TESSERA_NVCC nvcc HINTS /usr/local/cuda/bin ENV CUDA_HOME PATH_SUFFIXES bin)
    if(TESSERA_NVCC)
      set(CMAKE_CUDA_COMPILER "${TESSERA_NVCC}")
    endif()
  endif()
  if(TESSERA_CUDA STREQUAL "ON")
    set(TESSERA_CUDA_REQUIRED ON)
  elseif("$ENV{CI}" STREQUAL "true")
    if(CMAKE_CUDA_COMPILER)
      set(TESSERA_CUDA_REQUIRED ON)
      set(TESSERA_CUDA_CI ON)
      message(STATUS "Tessera: CI=true and nvcc at ${CMAKE_CUDA_COMPILER}: the CUDA backend must build "
                     "(TESSERA_CUDA=AUTO acts as ON)")
    else()
      message(WARNING "Tessera: CI=true but no nvcc on PATH, in /usr/local/cuda/bin or $CUDA_HOME/bin: this CI run "
                      "builds and tests the CPU backend only (README.md, 'CUDA build', says what a CUDA build needs)")
    endif()
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES "80;89;90" CACHE STRING "CUDA architectures")
    endif()
    enable_language(CUDA)
    # CMake 3.25 does not know nvcc's C++20 flag (nvcc 12+ has it): teach it, then ask for C++20.
    if(NOT CMAKE_CUDA20_STANDARD_COMPILE_OPTION)
      set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
      set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
    endif()
    set(CMAKE_CUDA_STANDARD 20)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    find_package(CUDAToolkit REQUIRED)
    set(TESSERA_HAVE_CUDA ON)
  elseif(TESSERA_CUDA_REQUIRED)
    message(FATAL_ERROR "The CUDA backend is required (TESSERA_CUDA=${TESSERA_CUDA}, CI=$ENV{CI}) but CMake found no "
                        "working CUDA compiler (nvcc: ${TESSERA_NVCC}); see CMakeFiles/CMakeError.log and README.md, "
                        "'CUDA build'")
  endif()
endif()

# Every directory's targets, recursively.
function(tessera_collect_targets dir out)
  get_property(targets DIRECTORY "${dir}" PROPERTY BUILDSYSTEM_TARGETS)
  get_property(subdirs DIRECTORY "${dir}" PROPERTY SUBDIRECTORIES)
  foreach(sub IN LISTS subdirs)
    tessera_collect_targets("${sub}" more)
    list(APPEND targets ${more})
  endforeach()
  set(${out} ${targets} PARENT_SCOPE)
endfunction()

# Run at the end of configuration when CUDA is required: a .cu file that no target compiles (a folder whose
# CMakeLists forgot it, a backend target skipped) fails here, naming the file; in CI, so does a missing NCCL.
function(tessera_check_cuda_sources)
  tessera_collect_targets("${PROJECT_SOURCE_DIR}" targets)
  set(compiled "")
  foreach(target IN LISTS targets)
    get_target_property(type ${target} TYPE)
    if(type STREQUAL "INTERFACE_LIBRARY")
      continue()
    endif()
    get_target_property(dir ${target} SOURCE_DIR)
    get_target_property(sources ${target} SOURCES)
    foreach(source IN LISTS sources)
      if(source MATCHES "\\.cu$" AND NOT source MATCHES "^\\$<")
        get_filename_component(source "${source}" ABSOLUTE BASE_DIR "${dir}")
        list(APPEND compiled "${source}")
      endif()
    endforeach()
  endforeach()
  file(GLOB_RECURSE tree_cu "${PROJECT_SOURCE_DIR}/*.cu")
  list(FILTER tree_cu EXCLUDE REGEX "^${PROJECT_SOURCE_DIR}/(build[^/]*|\\.[^/]*)/")
  set(orphans "")
  foreach(file IN LISTS tree_cu)
    if(NOT file IN_LIST compiled)
      file(RELATIVE_PATH relative "${PROJECT_SOURCE_DIR}" "${file}")
      list(APPEND orphans "${relative}")
    endif()
  endforeach()
  if(orphans)
    message(FATAL_ERROR "CUDA is required but no target compiles: ${orphans}")
  endif()
  list(LENGTH compiled count)
  if(TESSERA_CUDA_CI AND NOT TARGET tessera_parallel_nccl)
    message(FATAL_ERROR "CI=true with nvcc: NCCL was not found, so tessera_parallel_nccl and its tests would not be "
                        "built (set NCCL_HOME; README.md, 'CUDA build')")
  endif()
  message(STATUS "Tessera: every .cu file of the tree is compiled (${count} files)")
endfunction()
if(TESSERA_CUDA_REQUIRED)
  cmake_language(DEFER DIRECTORY "${PROJECT_SOURCE_DIR}" CALL tessera_check_cuda_sources)
endif()

# Warnings for our own targets (not for third-party headers).
add_library(tessera_warnings INTERFACE)
target_compile_options(tessera_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align
                             -Wnull-dereference -Wdouble-promotion -Wformat=2 -Wimplicit-fallthrough>
  $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra --Werror all-warnings>)
if(TESSERA_WERROR)
  target_compile_options(tessera_warnings INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-Werror>
                                                    $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Werror>)
endif()

if(TESSERA_SANITIZE)
  add_compile_options($<$<COMPILE_LANGUAGE:CXX,C>:-fsanitize=${TESSERA_SANITIZE}>
                      $<$<COMPILE_LANGUAGE:CXX,C>:-fno-omit-frame-pointer>
                      $<$<COMPILE_LANGUAGE:CXX,C>:-fno-sanitize-recover=all>)
  add_link_options(-fsanitize=${TESSERA_SANITIZE})
endif()

# Helper: a library of one top-level folder, its sources listed by the folder's CMakeLists.
function(tessera_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC "${PROJECT_SOURCE_DIR}")
  target_link_libraries(${name} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE tessera_warnings ${ARG_PRIVATE_DEPS})
endfunction()
