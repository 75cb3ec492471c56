# cmake -P script: runs an MPI job that must fail fast. Variables: MPIEXEC, NP, EXE, MODE, REGEX,
# MAX_SECONDS. Passes when the job exits non-zero within MAX_SECONDS and its output matches REGEX
# and holds no sanitizer report (launch/sanitize.sh: the job is expected to fail, so a report must
# not pass for the expected failure).
string(TIMESTAMP t0 "%s")
execute_process(COMMAND ${MPIEXEC} -np ${NP} --oversubscribe ${EXE} ${MODE}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out TIMEOUT 120)
string(TIMESTAMP t1 "%s")
math(EXPR secs "${t1} - ${t0}")
message("--- job output (exit ${rc}, ${secs}s) ---\n${out}")
if(rc EQUAL 0)
  message(FATAL_ERROR "the job exited 0; expected a non-zero exit")
endif()
if(secs GREATER MAX_SECONDS)
  message(FATAL_ERROR "the job took ${secs}s; expected at most ${MAX_SECONDS}s")
endif()
if(NOT out MATCHES "${REGEX}")
  message(FATAL_ERROR "output does not match \"${REGEX}\"")
endif()
if(out MATCHES "ERROR: (Address|Leak)Sanitizer|SUMMARY: UndefinedBehaviorSanitizer|: runtime error: ")
  message(FATAL_ERROR "the output holds a sanitizer report")
endif()
