"""`torii import`: turn what a gateway (or tyk-operator) already holds into manifests that adopt it."""
