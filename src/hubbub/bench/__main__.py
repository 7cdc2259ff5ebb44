"""``python -m hubbub.bench``: the same commands as ``hubbub bench``."""

from hubbub.bench.cli import app

if __name__ == "__main__":  # pragma: no cover
    app(prog_name="python -m hubbub.bench")
