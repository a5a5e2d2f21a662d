#pragma once
/// \file explicit_instantiation.hpp
/// The macros with which a header names what the compiled part (genmod/instantiate.cpp) compiles
/// once: its explicit instantiations for float and double (at its end, after the definitions),
/// and its larger non-template functions.
///
/// - With GENMOD_EXTERN_TEMPLATES defined, they expand to `extern template` declarations: a
///   translation unit calls the ops without compiling them, whichever genmod headers it includes
///   (the umbrella header or single ones).
/// - With GENMOD_INSTANTIATE_TEMPLATES defined (genmod/instantiate.cpp only), they expand to the
///   explicit instantiation definitions: that one translation unit compiles every listed op.
/// - With neither, GENMOD_DETAIL_TEMPLATE stays undefined and the headers declare nothing.
///
/// The same two macros also decide where genmod's larger non-template functions (the Trainer, the
/// checkpoint and archive readers and writers, the plots, the data set loaders) are compiled:
/// - GENMOD_DETAIL_NONTEMPLATE prefixes their declarations: `inline` in a header-only build, and
///   nothing under either macro (one external definition, in instantiate.cpp);
/// - GENMOD_DETAIL_NONTEMPLATE_BODIES is 1 where their bodies are compiled (a header-only build,
///   and instantiate.cpp) and 0 in a translation unit compiled with GENMOD_EXTERN_TEMPLATES, which
///   then sees declarations only. A header writes such a function as
///
///       GENMOD_DETAIL_NONTEMPLATE std::string f(int x)
///       #if GENMOD_DETAIL_NONTEMPLATE_BODIES
///       { ... }
///       #else
///       ;
///       #endif
///
///   and a member of a class outside the class, in a `#if GENMOD_DETAIL_NONTEMPLATE_BODIES` block.
/// - GENMOD_DETAIL_INSTANTIATE_CLASS(cls, T) declares or defines the explicit instantiation of a
///   whole class template for T (the tape, the optimizer base, the checkpoint set).
///
/// The first three are chosen in genmod/detail/instantiation_mode.hpp, which instantiate.cpp
/// includes again when it switches from declaring to defining (its parts, see there).
///
/// See genmod/extern_templates.hpp and docs/compile_times.md for how a program opts in.

#include "genmod/detail/instantiation_mode.hpp"

#if defined(GENMOD_DETAIL_TEMPLATE)
/// The explicit instantiation (declaration or definition) of the class template `cls` for T.
#define GENMOD_DETAIL_INSTANTIATE_CLASS(cls, T) GENMOD_DETAIL_TEMPLATE class cls<T>;
/// One explicit instantiation (declaration or definition) of the function template `op` for T,
/// which must have one overload only.
#define GENMOD_DETAIL_INSTANTIATE_OP(op, T) GENMOD_DETAIL_TEMPLATE decltype(op<T>) op<T>;
/// The same for an op on one Var whose name also has overloads on Tensors (exp, log, ...).
#define GENMOD_DETAIL_INSTANTIATE_UNARY(op, T) GENMOD_DETAIL_TEMPLATE genmod::Var<T> op<T>(const genmod::Var<T>&);
/// The same for an op on two Vars whose name also has other overloads (add, mul on Tensors;
/// bce_with_logits against a constant target).
#define GENMOD_DETAIL_INSTANTIATE_BINARY(op, T) \
  GENMOD_DETAIL_TEMPLATE genmod::Var<T> op<T>(const genmod::Var<T>&, const genmod::Var<T>&);
#endif
