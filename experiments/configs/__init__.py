"""YAML configs: one per method (`methods/<name>.yaml`, read by ``catalog.methods``) and one per
profile (`profiles/<name>.yaml`, read by ``catalog.profile``)."""
