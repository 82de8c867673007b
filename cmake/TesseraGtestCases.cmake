# Run by CTest when it starts (a TEST_INCLUDE_FILES script written by tessera_add_gtest): lists the cases of one
# GoogleTest binary (--gtest_list_tests) and adds one test per case, NAME.Suite.Case, running only that case.
# Each case is then Passed, Failed or Skipped on its own (SKIP_RETURN_CODE; tests/support/gtest_main.cpp).
# A binary that is missing becomes one test NAME that fails ("Could not find executable"); one that cannot list its
# cases runs whole as the test NAME: never no test.
# Input variables: TESSERA_CASES_{NAME,EXECUTABLE,TIMEOUT,LABELS,ENVIRONMENT,SKIP_RETURN_CODE}.

# Quoted one by one: LABELS and ENVIRONMENT are lists and must stay one argument each.
function(tessera_case_properties test)
  set_tests_properties("${test}" PROPERTIES TIMEOUT "${TESSERA_CASES_TIMEOUT}" LABELS "${TESSERA_CASES_LABELS}"
                       ENVIRONMENT "${TESSERA_CASES_ENVIRONMENT}" SKIP_RETURN_CODE "${TESSERA_CASES_SKIP_RETURN_CODE}")
endfunction()

function(tessera_add_gtest_cases)
  set(name "${TESSERA_CASES_NAME}")
  set(exe "${TESSERA_CASES_EXECUTABLE}")
  if(NOT EXISTS "${exe}")
    # CTest reports "Could not find executable" and counts the test as failed.
    add_test("${name}" "${exe}")
    tessera_case_properties("${name}")
    return()
  endif()
  execute_process(COMMAND "${exe}" --gtest_list_tests OUTPUT_VARIABLE listing ERROR_VARIABLE errors
                  RESULT_VARIABLE result TIMEOUT 60)
  if(NOT result EQUAL 0)
    # The binary as one test, every case in it: it still passes, fails or skips by its main's rule.
    message(WARNING "tessera: cannot list the cases of ${exe} (${result}): ${errors}; it runs as one test, ${name}")
    add_test("${name}" "${exe}")
    tessera_case_properties("${name}")
    return()
  endif()
  string(REPLACE ";" "\\;" listing "${listing}")
  string(REPLACE "\n" ";" lines "${listing}")
  set(suite "")
  set(count 0)
  foreach(line IN LISTS lines)
    string(REGEX REPLACE " *#.*$" "" line "${line}")  # "  Case/0  # GetParam() = ..." -> "  Case/0"
    if(line STREQUAL "")
      continue()
    elseif(line MATCHES "^  +([^ ]+)$")
      set(case "${CMAKE_MATCH_1}")
      set(test "${name}.${suite}.${case}")
      add_test("${test}" "${exe}" "--gtest_filter=${suite}.${case}")
      tessera_case_properties("${test}")
      if(suite MATCHES "(^|/)DISABLED_" OR case MATCHES "^DISABLED_")
        set_tests_properties("${test}" PROPERTIES DISABLED TRUE)
      endif()
      math(EXPR count "${count} + 1")
    elseif(line MATCHES "^([^ ]+)\\.$")
      set(suite "${CMAKE_MATCH_1}")
    endif()
  endforeach()
  if(count EQUAL 0)
    # No case at all: run the binary, whose main fails a run that selected nothing.
    add_test("${name}" "${exe}")
    tessera_case_properties("${name}")
  endif()
endfunction()

tessera_add_gtest_cases()
