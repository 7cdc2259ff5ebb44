#!/bin/sh
# Print a CPython 3.12 or newer to run the eager-start path with (see `make test-eager`):
# one on PATH, else one that pyenv installed; nothing when there is none.
for v in 3.14 3.13 3.12; do
  if python$v -c "" >/dev/null 2>&1; then echo "python$v"; exit 0; fi
done
root=$( (pyenv root) 2>/dev/null || echo "$HOME/.pyenv")
for v in 3.14 3.13 3.12; do
  for py in "$root"/versions/$v*/bin/python$v; do
    if [ -x "$py" ] && "$py" -c "" >/dev/null 2>&1; then echo "$py"; exit 0; fi
  done
done
exit 0
