# genmod_add_instantiations(<name>)
#
# A static library <name> that compiles genmod's ops for float and double, its larger class
# templates and its non-template code (the Trainer, the file formats, the plots) once
# (genmod/instantiate.cpp, as its three parts, which a parallel build compiles side by side), and
# makes every target that links it see them as declarations only (GENMOD_EXTERN_TEMPLATES), so
# that those targets' translation units do not compile them again. Compile-time, not run-time: the
# code is the same. The library is compiled with <name>'s own flags, which must match the
# targets' (e.g. -march=native on both). See docs/compile_times.md.
#
#   genmod_add_instantiations(genmod_ops)
#   target_link_libraries(app PRIVATE genmod_ops)
function(genmod_add_instantiations name)
  if(NOT GENMOD_INSTANTIATE_SOURCE)
    message(FATAL_ERROR "genmod_add_instantiations: GENMOD_INSTANTIATE_SOURCE is not set")
  endif()
  # instantiate.cpp's three parts (GENMOD_INSTANTIATE_PART), one small source file each, so that
  # a parallel build compiles them side by side: together they hold what instantiate.cpp holds.
  set(sources "")
  foreach(part 3 1 2)  # the largest first: a two-core build then ends with the two smaller side by side
    set(source "${CMAKE_CURRENT_BINARY_DIR}/${name}_part${part}.cpp")
    file(CONFIGURE OUTPUT "${source}"
         CONTENT "#define GENMOD_INSTANTIATE_PART ${part}\n#include \"${GENMOD_INSTANTIATE_SOURCE}\"\n")
    list(APPEND sources "${source}")
  endforeach()
  add_library(${name} STATIC ${sources})
  target_link_libraries(${name} PUBLIC genmod::genmod)
  target_compile_definitions(${name} INTERFACE GENMOD_EXTERN_TEMPLATES)
endfunction()
