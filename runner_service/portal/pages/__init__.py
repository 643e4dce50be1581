"""The portal's page groups, one module each (see runner_service.portal)."""
