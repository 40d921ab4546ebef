"""Allow ``python -m kubectl_restart_backend``."""

from kubectl_restart_backend.cli import main

if __name__ == "__main__":
    main()
