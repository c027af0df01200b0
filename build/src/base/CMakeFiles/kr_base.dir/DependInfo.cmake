
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/main/src/base/log.cc" "src/base/CMakeFiles/kr_base.dir/log.cc.o" "gcc" "src/base/CMakeFiles/kr_base.dir/log.cc.o.d"
  "/work/main/src/base/status.cc" "src/base/CMakeFiles/kr_base.dir/status.cc.o" "gcc" "src/base/CMakeFiles/kr_base.dir/status.cc.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
