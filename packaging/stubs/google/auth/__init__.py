"""Binary-only stand-in for google-auth: the legacy gcp auth-provider is not supported.

kubernetes' kube_config.py imports this module at load time but calls it only for a user
entry with ``auth-provider: {name: gcp}``; that call is where we say what to do instead.
"""

GCP_UNSUPPORTED = (
    "the kubeconfig uses the legacy 'auth-provider: gcp', which kubectl itself dropped in 1.26; "
    "install gke-gcloud-auth-plugin and run 'gcloud container clusters get-credentials' "
    "to switch the kubeconfig to it"
)


class GcpAuthProviderUnsupported(RuntimeError):
    """Raised instead of fetching Google credentials."""


def default(*_args, **_kwargs):
    raise GcpAuthProviderUnsupported(GCP_UNSUPPORTED)
