"""Entry point of the PyInstaller binary: one executable, two commands.

kubectl runs ``kubectl-restart_backend`` for ``kubectl restart-backend`` and, for shell
completion (kubectl 1.26+), ``kubectl_complete-restart_backend``. krew links only the first
into its bin directory; a second link to the same binary named ``kubectl_complete-...``
(docs/install.md) gives completion without a second copy. We dispatch on the invoked name.

Before anything else the environment is made what the user's shell had: PyInstaller's
bootloader prepends its own library directory to ``LD_LIBRARY_PATH``, and every child we
start (git, exec credential plugins such as ``aws`` or ``gke-gcloud-auth-plugin``) would
otherwise load our bundled libssl/libpython instead of its own.
"""

from __future__ import annotations

import os
import sys

COMPLETE_NAME = "kubectl_complete-restart_backend"


def _invoked_name(argv0: str) -> str:
    name = os.path.basename(argv0)
    return name[:-4] if name.lower().endswith(".exe") else name


def run() -> None:
    from kubectl_restart_backend.kubeconfig import sanitize_subprocess_env

    sanitize_subprocess_env()
    if _invoked_name(sys.argv[0]) == COMPLETE_NAME:
        from kubectl_restart_backend.completion import main as completion_main

        completion_main()
    else:
        from kubectl_restart_backend.cli import main as cli_main

        cli_main()


if __name__ == "__main__":
    run()
