# Optional libFuzzer build (-DDEVIN_ORCH_FUZZ=ON, clang only, its own build directory): one
# fuzz executable per tests/fuzz/*_fuzz.cpp; scripts/fuzz.sh builds and runs them.
option(DEVIN_ORCH_FUZZ "Build the libFuzzer targets in tests/fuzz (needs clang++)" OFF)
if(NOT DEVIN_ORCH_FUZZ)
  return()
endif()
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "DEVIN_ORCH_FUZZ needs clang++ (libFuzzer): configure a separate build "
                      "with -DCMAKE_CXX_COMPILER=clang++ (found ${CMAKE_CXX_COMPILER_ID})")
endif()

# Every target is instrumented, not only the fuzzers: coverage feedback and ASan must reach
# the module code under test. `function` misfires on coroutine frames in clang 14, and a UBSan
# report must abort so that libFuzzer records it as a crash.
set(_devin_orch_fuzz_sanitizers -fsanitize=address,undefined -fno-sanitize=function
    -fno-sanitize-recover=undefined -fno-omit-frame-pointer)

# This file runs after tests/ was added, so directory-level flags would miss those targets:
# instrument each one explicitly.
function(_devin_orch_fuzz_collect_targets directory out)
  get_property(targets DIRECTORY "${directory}" PROPERTY BUILDSYSTEM_TARGETS)
  get_property(subdirectories DIRECTORY "${directory}" PROPERTY SUBDIRECTORIES)
  foreach(subdirectory IN LISTS subdirectories)
    _devin_orch_fuzz_collect_targets("${subdirectory}" nested)
    list(APPEND targets ${nested})
  endforeach()
  set(${out} ${targets} PARENT_SCOPE)
endfunction()

_devin_orch_fuzz_collect_targets("${PROJECT_SOURCE_DIR}" _devin_orch_all_targets)
foreach(target IN LISTS _devin_orch_all_targets)
  get_target_property(type ${target} TYPE)
  if(type MATCHES "^(STATIC_LIBRARY|OBJECT_LIBRARY|SHARED_LIBRARY|MODULE_LIBRARY|EXECUTABLE)$")
    target_compile_options(${target} PRIVATE ${_devin_orch_fuzz_sanitizers}
                           -fsanitize=fuzzer-no-link)
  endif()
  if(type MATCHES "^(SHARED_LIBRARY|MODULE_LIBRARY|EXECUTABLE)$")
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endforeach()

# The fuzzers need the parsers, not the daemon: small libraries of just those sources keep the
# Beast and coroutine units (minutes under clang + ASan) out of this build.
add_library(fuzz_app_parsers STATIC
    src/app/jobs/job_file.cpp src/app/jobs/yaml_event_tape.cpp src/app/jobs/notify_yaml.cpp
    src/app/jobs/attachment_files.cpp
    src/app/config/config.cpp
    src/app/formats/diagnostic.cpp src/app/formats/duration.cpp src/app/formats/timestamp.cpp
    src/app/formats/yaml_events.cpp src/app/formats/yaml_value.cpp)
target_link_libraries(fuzz_app_parsers PUBLIC orch_core PkgConfig::LIBFYAML Boost::json Boost::url)
add_library(fuzz_api_parsers STATIC src/api/json_mapping.cpp src/api/json_item_stream.cpp)
target_link_libraries(fuzz_api_parsers PUBLIC orch_core Boost::json Boost::url)
foreach(target fuzz_app_parsers fuzz_api_parsers)
  target_compile_options(${target} PRIVATE ${_devin_orch_fuzz_sanitizers} -fsanitize=fuzzer-no-link)
endforeach()

set(_devin_orch_fuzz_libraries
    job_file fuzz_app_parsers
    json_mapping fuzz_api_parsers
    retry_after orch_core
    config fuzz_app_parsers
    yaml_events fuzz_app_parsers)
file(GLOB _devin_orch_fuzz_sources CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/tests/fuzz/*_fuzz.cpp")
set(DEVIN_ORCH_FUZZ_TARGETS "")
foreach(source IN LISTS _devin_orch_fuzz_sources)
  get_filename_component(name "${source}" NAME_WE)  # e.g. json_mapping_fuzz
  string(REGEX REPLACE "_fuzz$" "" stem "${name}")
  list(FIND _devin_orch_fuzz_libraries "${stem}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "cmake/fuzz.cmake: no module library listed for ${source}")
  endif()
  math(EXPR at "${at} + 1")
  list(GET _devin_orch_fuzz_libraries ${at} library)
  add_executable(fuzz_${stem} "${source}")
  target_link_libraries(fuzz_${stem} PRIVATE ${library})
  target_compile_options(fuzz_${stem} PRIVATE ${_devin_orch_fuzz_sanitizers} -fsanitize=fuzzer)
  target_link_options(fuzz_${stem} PRIVATE ${_devin_orch_fuzz_sanitizers} -fsanitize=fuzzer)
  list(APPEND DEVIN_ORCH_FUZZ_TARGETS fuzz_${stem})
endforeach()
add_custom_target(fuzzers DEPENDS ${DEVIN_ORCH_FUZZ_TARGETS})
message(STATUS "devin-orch: fuzz targets ${DEVIN_ORCH_FUZZ_TARGETS}")
