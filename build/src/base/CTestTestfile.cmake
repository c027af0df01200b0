# CMake generated Testfile for 
# Source directory: /work/main/src/base
# Build directory: /work/main/build/src/base
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
add_test([=[base_tests]=] "/work/main/build/bin/base_tests")
set_tests_properties([=[base_tests]=] PROPERTIES  WORKING_DIRECTORY "/work/main" _BACKTRACE_TRIPLES "/work/main/CMakeLists.txt;76;add_test;/work/main/src/base/CMakeLists.txt;3;kr_add_test;/work/main/src/base/CMakeLists.txt;0;")
