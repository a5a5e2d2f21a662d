// The one translation unit that compiles genmod's ops for float and double, its larger class
// templates and its non-template code when the rest of a program is built with
// GENMOD_EXTERN_TEMPLATES (see genmod/extern_templates.hpp): compile it
// once, with the same flags as the program, and link it in. genmod_add_instantiations() in
// CMake does both.
#define GENMOD_INSTANTIATE_TEMPLATES 1
#include "genmod/genmod.hpp"
