"""Road layers: imported per county, noded into a network, routed on with pgRouting."""
