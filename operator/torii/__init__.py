"""Torii: a Kubernetes operator for API gateways."""
