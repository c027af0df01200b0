file(REMOVE_RECURSE
  "../../bin/base_tests"
  "../../bin/base_tests.pdb"
  "CMakeFiles/base_tests.dir/status_test.cc.o"
  "CMakeFiles/base_tests.dir/status_test.cc.o.d"
)

# Per-language clean rules from dependency scanning.
foreach(lang CXX)
  include(CMakeFiles/base_tests.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
