# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Shared by scripts/check and scripts/demo (sourced, not run): installs what
# is missing and builds Alluvium out of tree with warnings as errors.
# Sets $top and $builddir and leaves the shell in $builddir.
#
# Environment: BUILDDIR (default: _build), JOBS (default: number of CPUs),
# CONFIGURE_FLAGS (extra ./configure arguments, e.g. --enable-asan).

top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${BUILDDIR:-$top/_build}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}

step() { printf '\n==> %s\n' "$*"; }

build_tree() {
  step "installing missing packages (scripts/setup)"
  "$top/scripts/setup" || return 1

  step "generating the build system (autogen.sh)"
  (cd "$top" && NOCONFIGURE=1 ./autogen.sh >/dev/null 2>&1) || return 1

  step "configuring in $builddir"
  mkdir -p "$builddir" && cd "$builddir" || return 1
  if [ ! -f Makefile ] || [ "$top/configure" -nt config.status ]; then
    # shellcheck disable=SC2086
    "$top/configure" --enable-werror ${CONFIGURE_FLAGS:-} >configure.out 2>&1 \
      || { cat configure.out; return 1; }
    sed -n '/Alluvium [0-9]/,$p' configure.out
  else
    echo "already configured"
  fi

  step "building (make -j$jobs)"
  make -j"$jobs" >make.out 2>&1 || { tail -n 60 make.out; return 1; }
  echo "built"
}
