# Test helpers. Unit tests are GoogleTest binaries registered with CTest, one test per case; multi-rank tests run
# the same kind of binary under mpirun with a fixed number of ranks. How a test skips: tests/README.md.

# Where mpirun needs extra flags: more ranks than cores, and running as root (CI, containers).
set(TESSERA_MPIRUN_FLAGS --oversubscribe CACHE STRING "Extra flags for mpirun in tests")
execute_process(COMMAND id -u OUTPUT_VARIABLE TESSERA_UID OUTPUT_STRIP_TRAILING_WHITESPACE)
if(TESSERA_UID STREQUAL "0")
  list(APPEND TESSERA_MPIRUN_FLAGS --allow-run-as-root)
endif()

# The default model, where scripts/fetch-model.sh stores it: $TESSERA_MODEL_PATH, else $TESSERA_MODEL_DIR/<file>,
# else ${XDG_CACHE_HOME:-$HOME/.cache}/tessera/models/<file>, as the environment is when CMake first configures.
# Every test gets it as TESSERA_MODEL_PATH (C++ tests through tests/support/test_paths.h, e2e tests as an argument),
# so all tests of a build look at the same file: -DTESSERA_TEST_MODEL_PATH=... changes it for all of them.
if(DEFINED ENV{TESSERA_MODEL_PATH})
  set(tessera_default_model "$ENV{TESSERA_MODEL_PATH}")
elseif(DEFINED ENV{TESSERA_MODEL_DIR})
  set(tessera_default_model "$ENV{TESSERA_MODEL_DIR}/SmolLM2-135M-Instruct.Q4_1.gguf")
elseif(DEFINED ENV{XDG_CACHE_HOME})
  set(tessera_default_model "$ENV{XDG_CACHE_HOME}/tessera/models/SmolLM2-135M-Instruct.Q4_1.gguf")
else()
  set(tessera_default_model "$ENV{HOME}/.cache/tessera/models/SmolLM2-135M-Instruct.Q4_1.gguf")
endif()
set(TESSERA_TEST_MODEL_PATH "${tessera_default_model}" CACHE FILEPATH "Model file used by the tests")
# What every test's environment starts with.
set(TESSERA_TEST_ENVIRONMENT "TESSERA_SOURCE_DIR=${PROJECT_SOURCE_DIR};OPENBLAS_NUM_THREADS=1;TESSERA_MODEL_PATH=${TESSERA_TEST_MODEL_PATH}")

# The exit code of a test that skipped (CTest's SKIP_RETURN_CODE on every test). The GoogleTest mains of
# tests/support exit with it only when every selected case skipped and none failed (tests/support/ctest_outcome.h);
# CTest then reports the test Skipped. Never SKIP_REGULAR_EXPRESSION: output matching says nothing about the exit code.
set(TESSERA_TEST_SKIP_RETURN_CODE 77)

# Every test binary labelled gpu, for building only what the GPU checks need (scripts/gpu/verify.sh).
add_custom_target(tessera_gpu_tests)

# tessera_add_gtest(NAME SOURCES ... [LIBS ...] [LABELS ...] [TIMEOUT s]): a GoogleTest binary NAME, linked with
# tests/support/gtest_main.cpp, and one CTest test per case, NAME.Suite.Case (listed from the binary when CTest
# starts, cmake/TesseraGtestCases.cmake), so a skipped case is reported Skipped even when its neighbours pass.
function(tessera_add_gtest name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} tessera_gtest_main tessera_warnings)
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  set(cases_file "${CMAKE_CURRENT_BINARY_DIR}/${name}.cases.cmake")
  file(GENERATE OUTPUT "${cases_file}" CONTENT
"set(TESSERA_CASES_NAME [==[${name}]==])
set(TESSERA_CASES_EXECUTABLE [==[$<TARGET_FILE:${name}>]==])
set(TESSERA_CASES_TIMEOUT ${ARG_TIMEOUT})
set(TESSERA_CASES_LABELS [==[unit;${ARG_LABELS}]==])
set(TESSERA_CASES_ENVIRONMENT [==[${TESSERA_TEST_ENVIRONMENT}]==])
set(TESSERA_CASES_SKIP_RETURN_CODE ${TESSERA_TEST_SKIP_RETURN_CODE})
include([==[${TESSERA_GTEST_CASES_SCRIPT}]==])
")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${cases_file}")
  if("gpu" IN_LIST ARG_LABELS)
    add_dependencies(tessera_gpu_tests ${name})
  endif()
endfunction()
set(TESSERA_GTEST_CASES_SCRIPT "${CMAKE_CURRENT_LIST_DIR}/TesseraGtestCases.cmake")

# tessera_add_mpi_test(NAME TARGET t RANKS 1 2 4 [ARGS ...] [ENV VAR=value ...]): one CTest test per rank
# count, each running the GoogleTest binary `t` under mpirun. The binary must use tests/support/mpi_gtest_main: its
# ranks agree on one exit code, Skipped only when every rank skipped every case.
function(tessera_add_mpi_test name)
  cmake_parse_arguments(ARG "" "TARGET;TIMEOUT" "RANKS;ARGS;LABELS;ENV" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  if("gpu" IN_LIST ARG_LABELS)
    add_dependencies(tessera_gpu_tests ${ARG_TARGET})
  endif()
  foreach(np IN LISTS ARG_RANKS)
    add_test(NAME ${name}.np${np}
             COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${np} ${TESSERA_MPIRUN_FLAGS}
                     $<TARGET_FILE:${ARG_TARGET}> ${ARG_ARGS})
    set_tests_properties(${name}.np${np} PROPERTIES TIMEOUT ${ARG_TIMEOUT} PROCESSORS ${np}
                         LABELS "mpi;${ARG_LABELS}" SKIP_RETURN_CODE ${TESSERA_TEST_SKIP_RETURN_CODE}
                         ENVIRONMENT "${TESSERA_TEST_ENVIRONMENT};OMPI_MCA_rmaps_base_oversubscribe=1;${ARG_ENV}")
  endforeach()
endfunction()

# tessera_isolate_mpi_sessions(): every test defined so far in the calling directory gets a session directory base of
# its own for Open MPI (OMPI_MCA_orte_tmpdir_base); call it last in a tests/ CMakeLists.txt whose tests run mpirun.
# Two mpiruns that CTest starts at once otherwise race on the shared /tmp/ompi.<host>.<uid>: one removes it while
# the other creates it, and orte_init fails with "A call to mkdir was unable to create the desired directory ...
# File exists" (open-mpi/ompi#8510). The base is short (/tmp/tsmpi-<hash>) because PMIx puts a Unix socket under it
# and such paths are limited to 108 bytes.
function(tessera_isolate_mpi_sessions)
  get_property(tests DIRECTORY PROPERTY TESTS)
  foreach(test IN LISTS tests)
    string(MD5 key "${CMAKE_BINARY_DIR}/${test}")
    string(SUBSTRING "${key}" 0 12 key)
    set(base "/tmp/tsmpi-${key}")
    file(MAKE_DIRECTORY "${base}")
    set_property(TEST "${test}" APPEND PROPERTY ENVIRONMENT "OMPI_MCA_orte_tmpdir_base=${base}")
  endforeach()
endfunction()
