"""MLflow JSON in and out."""
