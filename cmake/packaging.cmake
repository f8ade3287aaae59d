# The production .deb (CPack): install rules of the `runtime` component and the package metadata.
# devin-sim and every other test tool stay out because the package is built from `runtime` alone.
#
# The runtime rules are EXCLUDE_FROM_ALL and laid out for the package (/etc, /lib/systemd/system
# absolute, the rest under the /usr packaging prefix): a plain `cmake --install` keeps following
# the prefix-relative rules in CMakeLists.txt, whatever component they are in.

include(GNUInstallDirs)

set(DEVIN_ORCH_PACKAGE_MAINTAINER "devin-orch maintainers <devin-orch@localhost>"
    CACHE STRING "Maintainer field of the .deb (Name <email>)")

set(_devin_orch_config_dir "/etc/devin-orch")

install(TARGETS devin-orch RUNTIME DESTINATION bin COMPONENT runtime EXCLUDE_FROM_ALL)
install(FILES "${PROJECT_SOURCE_DIR}/config/devin-orch.yaml" DESTINATION "${_devin_orch_config_dir}"
        COMPONENT runtime EXCLUDE_FROM_ALL)
install(FILES "${PROJECT_SOURCE_DIR}/systemd/devin-orch.service" DESTINATION /lib/systemd/system
        COMPONENT runtime EXCLUDE_FROM_ALL)
# The package name, not PROJECT_NAME, decides the doc dir; they happen to be the same today.
install(DIRECTORY "${PROJECT_SOURCE_DIR}/docs/" DESTINATION share/doc/devin-orch
        COMPONENT runtime EXCLUDE_FROM_ALL)

# Maintainer scripts: let systemd see the unit, never start or enable it on install (the service
# needs an org id and an API key first), stop it on removal. The state directory (the database
# recording which sessions were paid for) survives even a purge, on purpose.
set(_devin_orch_control_dir "${PROJECT_BINARY_DIR}/packaging/control")
file(CONFIGURE OUTPUT "${_devin_orch_control_dir}/conffiles"
     CONTENT "${_devin_orch_config_dir}/devin-orch.yaml\n")
file(CONFIGURE OUTPUT "${_devin_orch_control_dir}/postinst" @ONLY CONTENT [=[#!/bin/sh
set -e
if [ "$1" = "configure" ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null || true
fi
exit 0
]=])
file(CONFIGURE OUTPUT "${_devin_orch_control_dir}/prerm" @ONLY CONTENT [=[#!/bin/sh
set -e
if [ "$1" = "remove" ] && [ -d /run/systemd/system ]; then
  systemctl stop devin-orch.service >/dev/null 2>&1 || true
fi
exit 0
]=])
file(CONFIGURE OUTPUT "${_devin_orch_control_dir}/postrm" @ONLY CONTENT [=[#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null || true
fi
exit 0
]=])

set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "devin-orch")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_VENDOR "devin-orch")
set(CPACK_PACKAGE_CONTACT "${DEVIN_ORCH_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_DESCRIPTION
    "devin-orch turns jobs into Devin sessions exactly once, polls them to completion within\n"
    "one shared rate budget, and records every outcome in SQLite. It runs as a hardened\n"
    "systemd service (DynamicUser, LoadCredential for the API key).")
list(JOIN CPACK_PACKAGE_DESCRIPTION "" CPACK_PACKAGE_DESCRIPTION)
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
# Only the runtime component, from this build tree: nothing else reaches the package.
set(CPACK_INSTALL_CMAKE_PROJECTS "${PROJECT_BINARY_DIR};${PROJECT_NAME};runtime;/")
set(CPACK_STRIP_FILES ON)
set(CPACK_THREADS 0)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${DEVIN_ORCH_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION "admin")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
# Library dependencies come from dpkg-shlibdeps (dpkg-dev); the CA store is a runtime need the
# binary's ELF header cannot show (TLS to api.devin.ai).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "ca-certificates")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    "${_devin_orch_control_dir}/conffiles"
    "${_devin_orch_control_dir}/postinst"
    "${_devin_orch_control_dir}/prerm"
    "${_devin_orch_control_dir}/postrm")
# 0644 for conffiles, 0755 for the maintainer scripts, whatever the umask of the build.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

# `package_source`: the tracked tree only, never build dirs, databases or local work.
set(CPACK_SOURCE_GENERATOR "TGZ")
set(CPACK_SOURCE_IGNORE_FILES "/\\\\.git/" "/build[^/]*/" "/work/" "\\\\.db(-wal|-shm)?$")

include(CPack)
