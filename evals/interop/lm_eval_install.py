"""Install, remove or show the one-line .pth file that makes `lm_eval --model evals` work from
lm-eval's own command line in this environment (see `evals.interop.lm_eval_hook` for why).

    python -m evals.interop.lm_eval_install install|uninstall|status
"""

from __future__ import annotations

import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path

from evals.interop.lm_eval_hook import PTH_LINE, PTH_NAME


def pth_path() -> Path:
    """Where the .pth file goes: this interpreter's site-packages."""
    return Path(sysconfig.get_paths()["purelib"]) / PTH_NAME


def install() -> Path:
    path = pth_path()
    path.write_text(PTH_LINE, encoding="utf-8")
    return path


def uninstall() -> Path:
    path = pth_path()
    path.unlink(missing_ok=True)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["install"]:
        print(f"installed {install()}: `lm_eval --model evals` now works in this environment")
        return 0
    if args == ["uninstall"]:
        print(f"removed {uninstall()}")
        return 0
    if args == ["status"]:
        path = pth_path()
        print(f"{path}: {'installed' if path.is_file() else 'not installed'}")
        return 0
    print("usage: python -m evals.interop.lm_eval_install install|uninstall|status", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
