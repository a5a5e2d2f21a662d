# genmod_add_instantiations(<name>)
#
# A static library <name> that compiles genmod's ops for float and double, its larger class
# templates and its non-template code (the Trainer, the file formats, the plots) once
# (genmod/instantiate.cpp), and makes every target that links it see them as declarations only
# (GENMOD_EXTERN_TEMPLATES), so that those targets' translation units do not compile them again. Compile-time, not run-time: the code is the same. The library is compiled with <name>'s
# own flags, which must match the targets' (e.g. -march=native on both). See
# docs/compile_times.md.
#
#   genmod_add_instantiations(genmod_ops)
#   target_link_libraries(app PRIVATE genmod_ops)
function(genmod_add_instantiations name)
  if(NOT GENMOD_INSTANTIATE_SOURCE)
    message(FATAL_ERROR "genmod_add_instantiations: GENMOD_INSTANTIATE_SOURCE is not set")
  endif()
  add_library(${name} STATIC "${GENMOD_INSTANTIATE_SOURCE}")
  target_link_libraries(${name} PUBLIC genmod::genmod)
  target_compile_definitions(${name} INTERFACE GENMOD_EXTERN_TEMPLATES)
endfunction()
