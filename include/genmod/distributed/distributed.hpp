#pragma once
/// \file distributed.hpp
/// Data-parallel training (docs/distributed.md): the Communicator contract, the in-process
/// ThreadCommunicator, DataParallel and the differentiable allreduce. The MPI implementation,
/// MpiCommunicator, is in mpi_communicator.hpp, included on its own: it needs <mpi.h> and the
/// genmod::mpi CMake target.

#include "genmod/distributed/allreduce_op.hpp"
#include "genmod/distributed/communicator.hpp"
#include "genmod/distributed/data_parallel.hpp"
#include "genmod/distributed/thread_communicator.hpp"
