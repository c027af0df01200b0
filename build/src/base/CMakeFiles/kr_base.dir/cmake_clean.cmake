file(REMOVE_RECURSE
  "../../lib/libkr_base.a"
  "../../lib/libkr_base.pdb"
  "CMakeFiles/kr_base.dir/log.cc.o"
  "CMakeFiles/kr_base.dir/log.cc.o.d"
  "CMakeFiles/kr_base.dir/status.cc.o"
  "CMakeFiles/kr_base.dir/status.cc.o.d"
)

# Per-language clean rules from dependency scanning.
foreach(lang CXX)
  include(CMakeFiles/kr_base.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
