"""Fetched test data (the default model) in the e2e tests: absent, a test skips (exit 77, CTest's SKIP_RETURN_CODE
set in cmake/TesseraTesting.cmake) or, where TESSERA_REQUIRE_TEST_DATA=1 (`make test`, CI), fails."""
import os

SKIP_RETURN_CODE = 77


def missing_file_exit_code(path, how_to_get="run scripts/fetch-model.sh"):
    """None when `path` exists; otherwise the exit code the test must return, after saying why."""
    if os.path.exists(path):
        return None
    if os.environ.get("TESSERA_REQUIRE_TEST_DATA") == "1":
        print(f"FAIL: {path} is absent and TESSERA_REQUIRE_TEST_DATA=1 (make test, CI) requires it ({how_to_get})")
        return 1
    print(f"SKIP: {path} is absent ({how_to_get})")
    return SKIP_RETURN_CODE
