// No include guard: genmod/instantiate.cpp includes this file again after switching from
// GENMOD_EXTERN_TEMPLATES to GENMOD_INSTANTIATE_TEMPLATES, so that the headers it includes from
// then on define what the headers included before only declared (one part of the compiled part).
/// \file instantiation_mode.hpp
/// GENMOD_DETAIL_TEMPLATE, GENMOD_DETAIL_NONTEMPLATE and GENMOD_DETAIL_NONTEMPLATE_BODIES for the
/// mode in force where this file is included (see genmod/detail/explicit_instantiation.hpp).

#undef GENMOD_DETAIL_TEMPLATE
#undef GENMOD_DETAIL_NONTEMPLATE
#undef GENMOD_DETAIL_NONTEMPLATE_BODIES

#if defined(GENMOD_INSTANTIATE_TEMPLATES)
/// `template` (explicit instantiation definitions) in instantiate.cpp.
#define GENMOD_DETAIL_TEMPLATE template
/// Nothing: instantiate.cpp holds the one external definition of each such function.
#define GENMOD_DETAIL_NONTEMPLATE
/// instantiate.cpp compiles the bodies.
#define GENMOD_DETAIL_NONTEMPLATE_BODIES 1
#elif defined(GENMOD_EXTERN_TEMPLATES)
/// `extern template` (explicit instantiation declarations) in every other translation unit.
#define GENMOD_DETAIL_TEMPLATE extern template
/// Nothing: the function is declared here and defined in instantiate.cpp.
#define GENMOD_DETAIL_NONTEMPLATE
/// This translation unit sees the declarations only.
#define GENMOD_DETAIL_NONTEMPLATE_BODIES 0
#else
/// `inline`: header-only, every translation unit that uses the function compiles it.
#define GENMOD_DETAIL_NONTEMPLATE inline
/// Header-only: the bodies are compiled where used.
#define GENMOD_DETAIL_NONTEMPLATE_BODIES 1
#endif
