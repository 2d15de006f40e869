"""Tenancy: what a namespace may ask of a gateway connection, set by the platform team in the operator's
configuration (`tenancy` globally, or per connection), and the checks that enforce it before anything is
written to a gateway."""
