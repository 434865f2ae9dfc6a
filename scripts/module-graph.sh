#!/usr/bin/env bash
# The crate's layering check. src/lib.rs lists the top-level modules from the top layer down; a module may
# use only modules listed after it. This prints the graph of `crate::<module>` references between top-level
# modules (one line per module: `module -> deps`) and exits 1 naming every arrow that points up, with the
# cycle it closes when there is one.
#
# Test-only code is not a dependency: items under `#[cfg(test)]` (inline `mod tests { .. }` and any other
# item) and files declared as `#[cfg(test)] mod name;` are skipped. Comments are skipped too.
# Plain bash, grep, sed and POSIX awk (mawk), so it runs on a fresh Debian machine.
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t modules < <(sed -n 's/^[[:space:]]*\(pub\(([a-z]*)\)\?[[:space:]]\+\)\?mod[[:space:]]\+\([a-z_0-9]\+\);.*/\3/p' src/lib.rs)
if [ "${#modules[@]}" -eq 0 ]; then
  echo "module-graph: no \`mod\` lines found in src/lib.rs" >&2
  exit 2
fi

# Files declared `#[cfg(test)] mod name;` are test modules: list their paths.
test_module_files() {
  local file dir name
  while IFS= read -r file; do
    case "$file" in
      */mod.rs | src/lib.rs) dir=$(dirname "$file") ;;
      *) dir=${file%.rs} ;;
    esac
    while IFS= read -r name; do
      echo "$dir/$name.rs"
      echo "$dir/$name/mod.rs"
    done < <(awk '/^[[:space:]]*#\[cfg\(test\)\]/ { pending = 1; next }
                  pending && /^[[:space:]]*#\[/ { next }
                  pending { if (match($0, /mod [a-z_0-9]+;/)) print substr($0, RSTART + 4, RLENGTH - 5); pending = 0 }' "$file")
  done < <(find src -name '*.rs')
}
declare -A skip_file=()
while IFS= read -r f; do skip_file[$f]=1; done < <(test_module_files)

# Top-level names a Rust file reaches through `crate::name` or `use crate::{name, other::x}`, outside
# `#[cfg(test)]` items and comments; one per line.
crate_refs() {
  awk '
    function indent_of(s) { match(s, /^[[:space:]]*/); return substr(s, 1, RLENGTH) }
    skip_until != "" { if (index($0, skip_until) == 1) skip_until = ""; next }
    /^[[:space:]]*#\[cfg\(test\)\]/ { pending = indent_of($0); in_test_attr = 1; next }
    in_test_attr && /^[[:space:]]*#\[/ { next }
    in_test_attr {
      in_test_attr = 0
      if ($0 !~ /;[[:space:]]*$/) skip_until = pending "}"
      next
    }
    /^[[:space:]]*\/\// { next }
    { sub(/[[:space:]]\/\/[[:space:]].*$/, ""); text = text " " $0 }
    END {
      while ((at = index(text, "crate::")) > 0) {
        before = at > 1 ? substr(text, at - 1, 1) : " "
        text = substr(text, at + 7)
        if (before ~ /[A-Za-z0-9_$]/) continue
        if (substr(text, 1, 1) != "{") {
          if (match(text, /^[a-z_][a-z_0-9]*/)) print substr(text, 1, RLENGTH)
          continue
        }
        depth = 0; expect = 1
        for (i = 1; i <= length(text); i++) {
          c = substr(text, i, 1)
          if (c == "{") { depth++; if (depth == 1) expect = 1; continue }
          if (c == "}") { depth--; if (depth == 0) break; continue }
          if (depth != 1) continue
          if (c == ",") { expect = 1; continue }
          if (c ~ /[[:space:]]/) continue
          if (expect && match(substr(text, i), /^[a-z_][a-z_0-9]*/)) {
            print substr(text, i, RLENGTH); i += RLENGTH - 1
          }
          expect = 0
        }
        text = substr(text, i + 1)
      }
    }' "$1"
}

declare -A rank=()
for i in "${!modules[@]}"; do rank[${modules[$i]}]=$i; done

declare -A deps=()
for m in "${modules[@]}"; do
  files=()
  [ -f "src/$m.rs" ] && files+=("src/$m.rs")
  [ -d "src/$m" ] && mapfile -t -O "${#files[@]}" files < <(find "src/$m" -name '*.rs' | sort)
  found=""
  for f in "${files[@]}"; do
    [ -n "${skip_file[$f]:-}" ] && continue
    found+=" $(crate_refs "$f" | tr '\n' ' ')"
  done
  list=""
  for d in "${modules[@]}"; do
    [ "$d" = "$m" ] && continue
    case " $found " in *" $d "*) list+=" $d" ;; esac
  done
  deps[$m]=${list# }
done

for m in "${modules[@]}"; do
  if [ -n "${deps[$m]}" ]; then echo "$m -> ${deps[$m]// /, }"; else echo "$m"; fi
done

# A path from $1 to $2 along the graph (breadth first), printed as `a -> b -> c`; empty when none.
path_between() {
  local from=$1 to=$2 queue=("$1") node next
  declare -A came_from=(["$1"]="")
  while [ "${#queue[@]}" -gt 0 ]; do
    node=${queue[0]}
    queue=("${queue[@]:1}")
    for next in ${deps[$node]}; do
      [ -n "${came_from[$next]+set}" ] && continue
      came_from[$next]=$node
      if [ "$next" = "$to" ]; then
        local path=$to
        while [ "$next" != "$from" ]; do next=${came_from[$next]}; path="$next -> $path"; done
        echo "$path"
        return
      fi
      queue+=("$next")
    done
  done
}

status=0
for m in "${modules[@]}"; do
  for d in ${deps[$m]}; do
    if [ "${rank[$d]}" -lt "${rank[$m]}" ]; then
      cycle=$(path_between "$d" "$m")
      if [ -n "$cycle" ]; then
        echo "module-graph: $m -> $d points up (src/lib.rs lists $d above $m) and closes the cycle $m -> $cycle" >&2
      else
        echo "module-graph: $m -> $d points up (src/lib.rs lists $d above $m)" >&2
      fi
      status=1
    fi
  done
done
exit "$status"
