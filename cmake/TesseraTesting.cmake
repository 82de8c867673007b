# Test helpers. Unit tests are GoogleTest binaries registered with CTest; multi-rank tests run the same
# kind of binary under mpirun with a fixed number of ranks.
include(GoogleTest OPTIONAL)

# Where mpirun needs extra flags: more ranks than cores, and running as root (CI, containers).
set(TESSERA_MPIRUN_FLAGS --oversubscribe CACHE STRING "Extra flags for mpirun in tests")
execute_process(COMMAND id -u OUTPUT_VARIABLE TESSERA_UID OUTPUT_STRIP_TRAILING_WHITESPACE)
if(TESSERA_UID STREQUAL "0")
  list(APPEND TESSERA_MPIRUN_FLAGS --allow-run-as-root)
endif()

# The default model, as scripts/fetch-model.sh stores it (tests that need it skip or fail with its path named).
if(DEFINED ENV{TESSERA_MODEL_PATH})
  set(TESSERA_TEST_MODEL_PATH "$ENV{TESSERA_MODEL_PATH}" CACHE FILEPATH "Model file used by the tests")
elseif(DEFINED ENV{TESSERA_MODEL_DIR})
  set(TESSERA_TEST_MODEL_PATH "$ENV{TESSERA_MODEL_DIR}/SmolLM2-135M-Instruct.Q4_1.gguf" CACHE FILEPATH "Model file used by the tests")
else()
  set(TESSERA_TEST_MODEL_PATH "$ENV{HOME}/.cache/tessera/models/SmolLM2-135M-Instruct.Q4_1.gguf" CACHE FILEPATH
      "Model file used by the tests")
endif()

# tessera_add_gtest(NAME SOURCES ... [LIBS ...] [LABELS ...])
function(tessera_add_gtest name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest GTest::gtest_main tessera_warnings)
  add_test(NAME ${name} COMMAND ${name})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES TIMEOUT ${ARG_TIMEOUT} LABELS "unit;${ARG_LABELS}"
                       ENVIRONMENT "TESSERA_SOURCE_DIR=${PROJECT_SOURCE_DIR};OPENBLAS_NUM_THREADS=1")
endfunction()

# tessera_add_mpi_test(NAME TARGET t RANKS 1 2 4 [ARGS ...] [ENV VAR=value ...]): one CTest test per rank
# count, each running the GoogleTest binary `t` under mpirun. The binary must use tests/support/mpi_gtest_main.
function(tessera_add_mpi_test name)
  cmake_parse_arguments(ARG "" "TARGET;TIMEOUT" "RANKS;ARGS;LABELS;ENV" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  foreach(np IN LISTS ARG_RANKS)
    add_test(NAME ${name}.np${np}
             COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${np} ${TESSERA_MPIRUN_FLAGS}
                     $<TARGET_FILE:${ARG_TARGET}> ${ARG_ARGS})
    set_tests_properties(${name}.np${np} PROPERTIES TIMEOUT ${ARG_TIMEOUT} PROCESSORS ${np}
                         LABELS "mpi;${ARG_LABELS}"
                         ENVIRONMENT "TESSERA_SOURCE_DIR=${PROJECT_SOURCE_DIR};OPENBLAS_NUM_THREADS=1;OMPI_MCA_rmaps_base_oversubscribe=1;${ARG_ENV}")
  endforeach()
endfunction()
