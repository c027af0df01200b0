# Run by a test that kr_add_failing_test() registered: fails, printing why.
# Usage: cmake -DKR_REASON=<text> -P fail_test.cmake
message(FATAL_ERROR "${KR_REASON}")
