"""kubectl restart-backend: rolling-restart the Deployment linked to this git repo and branch."""

__version__ = "0.1.0"
