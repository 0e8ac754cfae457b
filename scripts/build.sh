# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Shared by scripts/check and scripts/demo (sourced, not run): installs what
# is missing and builds Alluvium out of tree with warnings as errors.
# Sets $top, $builddir and $jobs; build_tree leaves the shell in the build
# directory.
#
# Environment: BUILDDIR (default: _build), JOBS (default: number of CPUs),
# CONFIGURE_FLAGS (extra ./configure arguments, e.g. --enable-asan).

top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${BUILDDIR:-$top/_build}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}

step() { printf '\n==> %s\n' "$*"; }

# install_deps: the Debian packages, then the generated build system.
install_deps() {
  step "installing missing packages (scripts/setup)"
  "$top/scripts/setup" || return 1

  # only when missing or older than configure.ac (the Makefiles remake
  # themselves when a Makefile.am changes): a re-run with nothing changed
  # does not configure again
  if [ ! -x "$top/configure" ] || [ "$top/configure.ac" -nt "$top/configure" ]; then
    step "generating the build system (autogen.sh)"
    (cd "$top" && NOCONFIGURE=1 ./autogen.sh >/dev/null 2>&1) || return 1
  fi
}

# configure_and_make DIR [CONFIGURE-ARGS...]: configures DIR (once, or
# again when configure changed) and builds everything in it.
configure_and_make() {
  dir=$1
  shift
  step "configuring in $dir"
  mkdir -p "$dir" && cd "$dir" || return 1
  if [ ! -f Makefile ] || [ "$top/configure" -nt config.status ]; then
    # shellcheck disable=SC2086
    "$top/configure" --enable-werror ${CONFIGURE_FLAGS:-} "$@" >configure.out 2>&1 \
      || { cat configure.out; return 1; }
    # (configure's clean-up of core dumps meets our core/ directory)
    sed -n '/Alluvium [0-9]/,$p' configure.out | grep -v "^rm: cannot remove 'core'"
  else
    echo "already configured"
  fi

  step "building in $dir (make -j$jobs)"
  make -j"$jobs" >make.out 2>&1 || { tail -n 60 make.out; return 1; }
  echo "built"
}

build_tree() {
  install_deps && configure_and_make "$builddir"
}
