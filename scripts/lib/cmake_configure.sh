# Sourced by the build scripts: the cmake flags every build of this tree shares. ccache, when present, is
# used with the tree as its base dir, so a clone elsewhere reuses the objects of an identical tree.
nightjar_cmake_flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DNIGHTJAR_WERROR=ON)
if command -v ccache >/dev/null 2>&1; then
  nightjar_cmake_flags+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  export CCACHE_BASEDIR=${root:?} CCACHE_NOHASHDIR=1
fi
