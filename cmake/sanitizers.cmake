# Optional sanitizer build: -DDEVIN_ORCH_SANITIZE=address,undefined instruments every target of
# the project, tests included (scripts/sanitizers.sh is the supported way to run it).
set(DEVIN_ORCH_SANITIZE "" CACHE STRING
    "Sanitizers for every target, comma-separated (e.g. address,undefined or thread); empty: none")

if(DEVIN_ORCH_SANITIZE)
  set(_devin_orch_sanitize_flags "-fsanitize=${DEVIN_ORCH_SANITIZE} -fno-omit-frame-pointer")
  # clang's `function` check misfires on coroutine frames (Asio awaitables).
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang" AND DEVIN_ORCH_SANITIZE MATCHES "undefined")
    string(APPEND _devin_orch_sanitize_flags " -fno-sanitize=function")
  endif()
  # g++ warns on every atomic_thread_fence in Asio under TSan; the warning carries no news.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND DEVIN_ORCH_SANITIZE MATCHES "thread")
    string(APPEND _devin_orch_sanitize_flags " -Wno-tsan")
  endif()
  # CMAKE_CXX_FLAGS and the linker flags are read per directory at generate time, so setting
  # them here reaches the targets already defined above and those of tests/ added below;
  # add_compile_options() would only reach targets created after this point.
  string(APPEND CMAKE_CXX_FLAGS " ${_devin_orch_sanitize_flags}")
  string(APPEND CMAKE_EXE_LINKER_FLAGS " -fsanitize=${DEVIN_ORCH_SANITIZE}")
  string(APPEND CMAKE_SHARED_LINKER_FLAGS " -fsanitize=${DEVIN_ORCH_SANITIZE}")
  string(APPEND CMAKE_MODULE_LINKER_FLAGS " -fsanitize=${DEVIN_ORCH_SANITIZE}")
  message(STATUS "devin-orch: sanitizers ${DEVIN_ORCH_SANITIZE} on every target")
endif()
