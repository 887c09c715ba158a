# Run at every build (cmake -P): writes OUT, a header defining NANOVLLM_GIT_COMMIT, the commit the
# build is made from ("-dirty" when the tree has uncommitted changes), and rewrites it only when
# that changes, so nothing recompiles otherwise. $NANOVLLM_GIT_COMMIT wins: a copy of the tree on
# another machine may sit in a different git checkout, or in none.
if(DEFINED ENV{NANOVLLM_GIT_COMMIT} AND NOT "$ENV{NANOVLLM_GIT_COMMIT}" STREQUAL "")
  set(commit "$ENV{NANOVLLM_GIT_COMMIT}")
else()
  execute_process(COMMAND git describe --always --dirty --abbrev=7 WORKING_DIRECTORY "${SRC}"
                  OUTPUT_VARIABLE commit OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
endif()
if(NOT commit)
  set(commit unknown)
endif()
set(text "#pragma once\n#define NANOVLLM_GIT_COMMIT \"${commit}\"\n")
set(old "")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
endif()
if(NOT old STREQUAL text)
  file(WRITE "${OUT}" "${text}")
endif()
