#!/usr/bin/env bash
# The include layers of the library, checked line by line:
#   core        includes only core
#   io          core, io
#   repo        core, io, repo
#   components  core, io, repo, components/component.hpp and its own folder: never another component,
#               never cdc/ or run/ (the registry beside component.hpp may include every component)
#   cdc         anything below run/ (core, io, repo, components), never run/
#   run         anything in the library
#   backup/, restore/ (the binaries)  only run/ and their own folder
# Prints each offending line as file:line: include: rule, and fails when there is one.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

allowed() {  # allowed <area of the including file> <component folder or ""> <included path under nightjar/>
  local area=$1 own=$2 inc=$3
  case $area in
    core) [[ $inc == core/* ]] ;;
    io) [[ $inc == core/* || $inc == io/* ]] ;;
    repo) [[ $inc == core/* || $inc == io/* || $inc == repo/* ]] ;;
    components)
      [[ $inc == core/* || $inc == io/* || $inc == repo/* || $inc == components/component.hpp ]] && return 0
      [[ -z $own && $inc == components/* ]] && return 0
      [[ -n $own && $inc == components/$own/* ]] ;;
    cdc) [[ $inc != run/* ]] ;;
    run) return 0 ;;
    bin) [[ $inc == run/* ]] ;;
    *) return 1 ;;
  esac
}

rule_text() {
  case $1 in
    core) echo "core includes only core" ;;
    io) echo "io includes only core and io" ;;
    repo) echo "repo includes only core, io and repo" ;;
    components) echo "a component includes core, io, repo, components/component.hpp and its own folder only (never run/ or cdc/)" ;;
    cdc) echo "cdc never includes run/" ;;
    bin) echo "the binaries include only run/ and their own folder" ;;
  esac
}

bad=0
checked=0
while IFS= read -r file; do
  rel=${file#manifest/src/}
  rel=${rel#manifest/include/nightjar/}
  own=""
  case $file in
    backup/* | restore/*) area=bin ;;
    *) area=${rel%%/*} ;;
  esac
  if [[ $area == components ]]; then
    rest=${rel#components/}
    [[ $rest == */* ]] && own=${rest%%/*}
  fi
  checked=$((checked + 1))
  while IFS=: read -r line text; do
    inc=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"nightjar\/([^"]+)".*/\1/' <<<"$text")
    if ! allowed "$area" "$own" "$inc"; then
      echo "$file:$line: #include \"nightjar/$inc\": $(rule_text "$area")"
      bad=$((bad + 1))
    fi
  done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"nightjar/' "$file" || true)
done < <(find manifest/src manifest/include/nightjar backup restore -name '*.cpp' -o -name '*.hpp' | sort)

if [ "$bad" -gt 0 ]; then
  echo "include layers: $bad offending include(s) in $checked files" >&2
  exit 1
fi
echo "include layers: $checked files clean"
