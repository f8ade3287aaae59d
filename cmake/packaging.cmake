# The production .deb (CPack): install rules of the `runtime` component and the package metadata.
# devin-sim and every other test tool stay out because the package is built from `runtime` alone.
#
# The runtime rules are EXCLUDE_FROM_ALL and laid out for the package (/etc, /lib/systemd/system
# absolute, the rest under the /usr packaging prefix): a plain `cmake --install` keeps following
# the prefix-relative rules in CMakeLists.txt, whatever component they are in.

include(GNUInstallDirs)

# packaging/changelog (Debian format) is the one record of releases: its latest entry names the
# package version, who signed the release and when. The .deb carries it as changelog.gz, the
# name Debian gives the changelog of a native package (one whose upstream is its packager).
set(_devin_orch_changelog "${PROJECT_SOURCE_DIR}/packaging/changelog")
if(NOT EXISTS "${_devin_orch_changelog}")
  message(FATAL_ERROR "${_devin_orch_changelog} is missing: configuring reads the version and "
                      "maintainer there (a container build must COPY it)")
endif()
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${_devin_orch_changelog}")
file(READ "${_devin_orch_changelog}" _devin_orch_changelog_text)
if(NOT _devin_orch_changelog_text MATCHES "^devin-orch \\(([^)]+)\\)")
  message(FATAL_ERROR "${_devin_orch_changelog}: the first line is not 'devin-orch (VERSION) ...'")
endif()
if(NOT CMAKE_MATCH_1 STREQUAL PROJECT_VERSION)
  message(FATAL_ERROR "${_devin_orch_changelog}: the latest entry is ${CMAKE_MATCH_1} but the "
                      "project's VERSION is ${PROJECT_VERSION}: a release bumps VERSION in "
                      "CMakeLists.txt and adds its entry on top of the changelog")
endif()
if(NOT _devin_orch_changelog_text MATCHES "\n -- ([^<\n]+ <[^>\n]+>)  ([^\n]+)")
  message(FATAL_ERROR "${_devin_orch_changelog}: the latest entry has no ' -- Name <email>  date' line")
endif()
set(_devin_orch_release_signer "${CMAKE_MATCH_1}")
set(_devin_orch_release_date "${CMAKE_MATCH_2}")

set(DEVIN_ORCH_DEB_MAINTAINER "" CACHE STRING
    "Maintainer field of the .deb (Name <email>); empty: the signer of packaging/changelog's latest entry")
if(DEVIN_ORCH_DEB_MAINTAINER)
  set(_devin_orch_maintainer "${DEVIN_ORCH_DEB_MAINTAINER}")
else()
  set(_devin_orch_maintainer "${_devin_orch_release_signer}")
endif()

set(_devin_orch_prefix "/usr")
set(_devin_orch_config_dir "/etc/devin-orch")
set(_devin_orch_doc_dir "share/doc/devin-orch")

install(TARGETS devin-orch RUNTIME DESTINATION bin COMPONENT runtime EXCLUDE_FROM_ALL)
install(FILES "${PROJECT_SOURCE_DIR}/config/devin-orch.yaml" DESTINATION "${_devin_orch_config_dir}"
        COMPONENT runtime EXCLUDE_FROM_ALL)
install(FILES "${PROJECT_SOURCE_DIR}/systemd/devin-orch.service" DESTINATION /lib/systemd/system
        COMPONENT runtime EXCLUDE_FROM_ALL)
# The package name, not PROJECT_NAME, decides the doc dir; they happen to be the same today.
install(DIRECTORY "${PROJECT_SOURCE_DIR}/docs/" DESTINATION "${_devin_orch_doc_dir}"
        COMPONENT runtime EXCLUDE_FROM_ALL)
# Debian policy 12.5: the copyright file, machine-readable (DEP-5).
install(FILES "${PROJECT_SOURCE_DIR}/packaging/copyright" DESTINATION "${_devin_orch_doc_dir}"
        COMPONENT runtime EXCLUDE_FROM_ALL)
# A starting point next to the reference configuration in /etc: a minimal configuration and a
# job file that shows every field.
install(FILES "${PROJECT_SOURCE_DIR}/examples/production/devin-orch.yaml"
              "${PROJECT_SOURCE_DIR}/examples/production/jobs.yaml"
        DESTINATION "${_devin_orch_doc_dir}/examples" COMPONENT runtime EXCLUDE_FROM_ALL)

# Made at build time (target devin-orch-package-docs, part of `all`), gzip -9n so the bytes
# depend on the sources alone: the changelog, and devin-orch(1) written by packaging/manpage.py
# from the built binary's --help texts, which stay the one source of what the page says. The
# page's date is the release's, not the build's.
set(_devin_orch_generated "${PROJECT_BINARY_DIR}/packaging/generated")
find_program(DEVIN_ORCH_GZIP gzip REQUIRED)
add_custom_command(
  OUTPUT "${_devin_orch_generated}/changelog.gz"
  COMMAND "${CMAKE_COMMAND}" -E copy "${_devin_orch_changelog}" "${_devin_orch_generated}/changelog"
  COMMAND "${DEVIN_ORCH_GZIP}" -9nf "${_devin_orch_generated}/changelog"
  DEPENDS "${_devin_orch_changelog}"
  COMMENT "Compressing packaging/changelog for the .deb")
set(_devin_orch_package_docs "${_devin_orch_generated}/changelog.gz")
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND)
  set(_devin_orch_manpage "${_devin_orch_generated}/devin-orch.1")
  add_custom_command(
    OUTPUT "${_devin_orch_manpage}.gz"
    COMMAND Python3::Interpreter "${PROJECT_SOURCE_DIR}/packaging/manpage.py"
            --binary "$<TARGET_FILE:devin-orch>" --date "${_devin_orch_release_date}"
            --output "${_devin_orch_manpage}"
            --file "${_devin_orch_config_dir}/devin-orch.yaml=the configuration the service reads, every key with its default and what it does"
            --file "/lib/systemd/system/devin-orch.service=the hardened systemd unit (enable it once the configuration and the API key are in place)"
            --file "/etc/credstore/devin-api-key=the API key, loaded by the unit as the credential devin-api-key"
            --file "${_devin_orch_prefix}/${_devin_orch_doc_dir}/examples/=a minimal configuration and a job file showing every field"
            --see-also "systemctl(1), journalctl(1), systemd-creds(1),"
            --see-also "${_devin_orch_prefix}/${_devin_orch_doc_dir}/: deployment.md (package, unit, container),"
            --see-also "cli.md (every command's output), queue.md (jobs from other programs),"
            --see-also "architecture.md, metrics.md"
    COMMAND "${DEVIN_ORCH_GZIP}" -9nf "${_devin_orch_manpage}"
    DEPENDS devin-orch "${PROJECT_SOURCE_DIR}/packaging/manpage.py"
    COMMENT "Writing devin-orch(1) from the help texts"
    VERBATIM)
  list(APPEND _devin_orch_package_docs "${_devin_orch_manpage}.gz")
  # cpack never builds: a page missing, or older than the binary it describes, stops it.
  install(CODE "
    if(NOT EXISTS \"${_devin_orch_manpage}.gz\" OR
       \"$<TARGET_FILE:devin-orch>\" IS_NEWER_THAN \"${_devin_orch_manpage}.gz\")
      message(FATAL_ERROR \"devin-orch(1) is missing or older than devin-orch: \"
                          \"cmake --build ${PROJECT_BINARY_DIR} --target devin-orch-package-docs\")
    endif()" COMPONENT runtime EXCLUDE_FROM_ALL)
  install(FILES "${_devin_orch_manpage}.gz" DESTINATION "${CMAKE_INSTALL_MANDIR}/man1"
          COMPONENT runtime EXCLUDE_FROM_ALL)
else()
  install(CODE "message(FATAL_ERROR \"devin-orch(1) needs python3 at build time: install it \"
                \"(scripts/setup.sh), then configure and build again\")"
          COMPONENT runtime EXCLUDE_FROM_ALL)
endif()
add_custom_target(devin-orch-package-docs ALL DEPENDS ${_devin_orch_package_docs})
install(FILES "${_devin_orch_generated}/changelog.gz" DESTINATION "${_devin_orch_doc_dir}"
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
# deb-systemd-invoke (init-system-helpers, on every Debian system) rather than systemctl, as
# debhelper's scripts do: it honours policy-rc.d, and lintian flags any systemctl call but
# daemon-reload (maintainer-script-calls-systemctl).
file(CONFIGURE OUTPUT "${_devin_orch_control_dir}/prerm" @ONLY CONTENT [=[#!/bin/sh
set -e
if [ "$1" = "remove" ] && [ -d /run/systemd/system ]; then
  deb-systemd-invoke stop devin-orch.service >/dev/null 2>&1 || true
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
set(CPACK_PACKAGE_CONTACT "${_devin_orch_maintainer}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
# Lines of at most 80 characters (lintian: extended-description-line-too-long).
set(CPACK_PACKAGE_DESCRIPTION
    "devin-orch turns jobs into Devin sessions exactly once, polls them to\n"
    "completion within one shared rate budget, and records every outcome in\n"
    "SQLite. It runs as a hardened systemd service (DynamicUser, LoadCredential\n"
    "for the API key).")
list(JOIN CPACK_PACKAGE_DESCRIPTION "" CPACK_PACKAGE_DESCRIPTION)
set(CPACK_PACKAGING_INSTALL_PREFIX "${_devin_orch_prefix}")
# Only the runtime component, from this build tree: nothing else reaches the package.
set(CPACK_INSTALL_CMAKE_PROJECTS "${PROJECT_BINARY_DIR};${PROJECT_NAME};runtime;/")
set(CPACK_STRIP_FILES ON)
set(CPACK_THREADS 0)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${_devin_orch_maintainer}")
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
