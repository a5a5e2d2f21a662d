# Runs an MPI job that must fail (a rank dies) and checks that it ends, rather than hangs:
#
#   cmake -DLIMIT=<seconds> [-DEXPECT_NONZERO=ON] [-DEXPECT_OUTPUT=<regex>] -P expect_job_failure.cmake -- <command...>
#
# Passes when <command> ends within LIMIT seconds, with a nonzero exit status if EXPECT_NONZERO,
# and with output (stdout and stderr together) matching EXPECT_OUTPUT if given. (Open MPI's
# mpiexec --enable-recovery exits with 0 even after MPI_Abort, hence the output check.) CMake
# kills the command at LIMIT; CTest's own TIMEOUT is the outer bound.
set(command "")
set(after_dashes OFF)
math(EXPR last "${CMAKE_ARGC} - 1")
foreach(i RANGE ${last})
  if(after_dashes)
    list(APPEND command "${CMAKE_ARGV${i}}")
  elseif(CMAKE_ARGV${i} STREQUAL "--")
    set(after_dashes ON)
  endif()
endforeach()
list(LENGTH command words)  # (not `if(NOT command)`: a command named "false" would read as false)
if(words EQUAL 0 OR NOT LIMIT)
  message(FATAL_ERROR "usage: cmake -DLIMIT=<s> [-DEXPECT_NONZERO=ON] [-DEXPECT_OUTPUT=<regex>] -P expect_job_failure.cmake -- <command...>")
endif()

string(TIMESTAMP start "%s")
execute_process(COMMAND ${command} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE out TIMEOUT ${LIMIT})
string(TIMESTAMP end "%s")
math(EXPR seconds "${end} - ${start}")
message("${out}")
message("exit status: ${status}, after about ${seconds} s")
if(status MATCHES "timeout")
  message(FATAL_ERROR "the job did not end within ${LIMIT} s: a dead rank left the others hanging")
endif()
if(EXPECT_NONZERO AND status STREQUAL "0")
  message(FATAL_ERROR "the job exited with status 0 although a rank died")
endif()
if(DEFINED EXPECT_OUTPUT AND NOT out MATCHES "${EXPECT_OUTPUT}")
  message(FATAL_ERROR "the job's output does not match \"${EXPECT_OUTPUT}\"")
endif()
