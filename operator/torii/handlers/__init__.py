"""kopf handlers: thin adapters from kopf's callbacks to `torii.reconcile`."""
