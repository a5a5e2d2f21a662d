#pragma once
/// \file explicit_instantiation.hpp
/// The macros with which each op, loss and optimizer header names its own explicit
/// instantiations for float and double (at its end, after the definitions).
///
/// - With GENMOD_EXTERN_TEMPLATES defined, they expand to `extern template` declarations: a
///   translation unit calls the ops without compiling them, whichever genmod headers it includes
///   (the umbrella header or single ones).
/// - With GENMOD_INSTANTIATE_TEMPLATES defined (genmod/instantiate.cpp only), they expand to the
///   explicit instantiation definitions: that one translation unit compiles every listed op.
/// - With neither, GENMOD_DETAIL_TEMPLATE stays undefined and the headers declare nothing.
///
/// See genmod/extern_templates.hpp and docs/compile_times.md for how a program opts in.

#if defined(GENMOD_INSTANTIATE_TEMPLATES)
/// `template` (explicit instantiation definitions) in instantiate.cpp.
#define GENMOD_DETAIL_TEMPLATE template
#elif defined(GENMOD_EXTERN_TEMPLATES)
/// `extern template` (explicit instantiation declarations) in every other translation unit.
#define GENMOD_DETAIL_TEMPLATE extern template
#endif

#if defined(GENMOD_DETAIL_TEMPLATE)
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
