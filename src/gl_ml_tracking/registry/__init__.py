"""GitLab-style generic package registry: storage, services and the HTTP blueprint."""
