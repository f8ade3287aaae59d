# Script tests of how devin-orch ships: the systemd unit (verify, security exposure), the .deb's
# contents and metadata, lintian's verdict on it, the shipped examples, and the Dockerfile rules.
# Label `packaging`; none of them compiles.
find_package(Python3 REQUIRED COMPONENTS Interpreter)

set(_packaging_dir "${CMAKE_CURRENT_LIST_DIR}")
set(_unit "${PROJECT_SOURCE_DIR}/systemd/devin-orch.service")

add_test(NAME packaging_unit_check
         COMMAND "${PROJECT_SOURCE_DIR}/scripts/check-unit.sh" --binary $<TARGET_FILE:devin-orch>
                 --unit "${_unit}" --threshold 2.0)
add_test(NAME packaging_unit_check_selftest
         COMMAND "${_packaging_dir}/check_unit_selftest.sh" "${PROJECT_SOURCE_DIR}/scripts/check-unit.sh"
                 $<TARGET_FILE:devin-orch> "${_unit}")
# cpack runs the install step of this tree: it packs the devin-orch already built (and the man
# page and changelog the build made), never builds. The .deb stays in the build tree for
# packaging_lintian, so the package is made once per run.
set(_kept_deb_dir "${PROJECT_BINARY_DIR}/packaging/test-deb")
add_test(NAME packaging_deb
         COMMAND "${_packaging_dir}/check_deb.sh" "${CMAKE_CPACK_COMMAND}"
                 "${PROJECT_BINARY_DIR}/CPackConfig.cmake" "${PROJECT_SOURCE_DIR}" "${PROJECT_VERSION}"
                 "${_kept_deb_dir}")
add_test(NAME packaging_lintian COMMAND "${_packaging_dir}/lintian_deb.sh" "${_kept_deb_dir}")
set_tests_properties(packaging_deb PROPERTIES FIXTURES_SETUP devin_orch_deb)
set_tests_properties(packaging_lintian PROPERTIES FIXTURES_REQUIRED devin_orch_deb)
add_test(NAME packaging_examples
         COMMAND "${_packaging_dir}/check_examples.sh" $<TARGET_FILE:devin-orch> "${PROJECT_SOURCE_DIR}")
# The hand-written lint, not `npx dockerfile-utils`: CI must not hinge on reaching npm.
add_test(NAME packaging_dockerfile_lint
         COMMAND "${Python3_EXECUTABLE}" "${_packaging_dir}/lint_dockerfile.py" --context "${PROJECT_SOURCE_DIR}")
add_test(NAME packaging_dockerfile_lint_selftest
         COMMAND "${Python3_EXECUTABLE}" "${_packaging_dir}/lint_dockerfile.py" --self-test)

set_tests_properties(packaging_unit_check packaging_unit_check_selftest packaging_deb
                     packaging_lintian packaging_examples
                     packaging_dockerfile_lint packaging_dockerfile_lint_selftest
                     PROPERTIES LABELS packaging TIMEOUT 120)
# cpack strips and compresses the binary (200 MB unstripped under ASan) and lintian reads it:
# on a loaded 2-core machine each took up to 100 s.
set_tests_properties(packaging_deb packaging_lintian PROPERTIES TIMEOUT 300)
